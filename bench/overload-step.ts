/**
 * One step of the overload bench: closed-loop clients sending keyless transfers between a few hot
 * accounts for a while, and what the database and Keel's metrics say about it afterwards.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool, request } from 'undici';
import { errorName } from './errors';
import { psql } from './fixtures';
import { percentile } from './stats';

export interface Answer {
  status: number;
  ms: number;
  key: string | null;
  code: string | null;
}

// Backends still busy this long after the load stopped would be a defect: the poll ends here.
const QUIET_LIMIT_MS = 15000;

/** A transfer between two distinct accounts of the `hot` first ones: `from` and `to`. */
function hotPair(lo: number, hot: number, random: () => number): [number, number] {
  const a = Math.floor(random() * hot);
  const b = (a + 1 + Math.floor(random() * (hot - 1))) % hot;
  return [lo + a, lo + b];
}

async function runStep({
  port,
  firstAccount,
  hot,
  clients,
  measureMs,
}: {
  port: number;
  firstAccount: number;
  hot: number;
  clients: number;
  measureMs: number;
}) {
  const pool = new Pool(`http://127.0.0.1:${port}`, {
    connections: clients,
    headersTimeout: 15000,
    bodyTimeout: 15000,
  });
  const answers: Answer[] = [];
  const errors: Record<string, number> = {};
  const until = performance.now() + measureMs;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < until) {
        const [from, to] = hotPair(firstAccount, hot, Math.random);
        const t = performance.now();
        try {
          const res = await pool.request({
            method: 'POST',
            path: '/api/transfers',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ from, to, amount: 1 }),
          });
          const body = (await res.body.json()) as { error?: { code?: string } } | null;
          answers.push({
            status: res.statusCode,
            ms: performance.now() - t,
            key: (res.headers['idempotency-key'] as string | undefined) ?? null,
            code: body?.error?.code ?? null,
          });
        } catch (err) {
          const name = errorName(err);
          errors[name] = (errors[name] ?? 0) + 1;
          await sleep(20);
        }
      }
    }),
  );
  await pool.close();
  return { answers, errors };
}

async function quietAfter(url: string, stoppedAt: number): Promise<{ busy: number; ms: number }> {
  for (;;) {
    const [row = { n: 0 }] = await psql<{ n: number }>(
      url,
      `select count(*)::int as n from pg_stat_activity
        where application_name like 'keel:%' and state <> 'idle'`,
    );
    const waited = performance.now() - stoppedAt;
    if (row.n === 0 || waited > QUIET_LIMIT_MS) return { busy: row.n, ms: Math.round(waited) };
    await sleep(50);
  }
}

/**
 * Why units were refused, summed over the workers: the gate's reasons (`keel_db_shed_total`),
 * units abandoned at the deadline while running (`keel_db_queries_total{outcome="timeout"}`),
 * retries, and attempts that failed retryably (serialization failure, deadlock).
 */
async function refusals(port: number): Promise<Record<string, number>> {
  const text = await (await request(`http://127.0.0.1:${port}/metrics`)).body.text();
  const sums: Record<string, number> = {
    overload: 0,
    full: 0,
    deadline: 0,
    aborted: 0,
    timeout: 0,
    retryable: 0,
    retries: 0,
  };
  const add = (k: string, v: number) => (sums[k] = (sums[k] ?? 0) + v);
  for (const line of text.split('\n')) {
    const shed = /^keel_db_shed_total\{[^}]*reason="(\w+)"[^}]*\} (\d+)/.exec(line);
    if (shed) add(shed[1]!, Number(shed[2]));
    const q = /^keel_db_queries_total\{[^}]*outcome="(timeout|retryable)"[^}]*\} (\d+)/.exec(line);
    if (q) add(q[1]!, Number(q[2]));
    const r = /^keel_db_retries_total(?:\{[^}]*\})? (\d+)/.exec(line);
    if (r) add('retries', Number(r[1]));
  }
  return sums;
}

const minus = (a: Record<string, number>, b: Record<string, number>) =>
  Object.fromEntries(Object.keys(a).map((k) => [k, a[k]! - (b[k] ?? 0)]));

/** How many of these generated keys name a row: transfers that were applied. */
async function applied(url: string, keys: (string | null)[]): Promise<number> {
  let n = 0;
  for (let i = 0; i < keys.length; i += 1000) {
    const list = keys
      .slice(i, i + 1000)
      .filter((k): k is string => /^keel-gen-[0-9a-f-]{36}$/.test(k as string))
      .map((k) => `'gen:${k.slice('keel-gen-'.length)}'`);
    if (list.length === 0) continue;
    const [row = { n: 0 }] = await psql<{ n: number }>(
      url,
      `select count(*)::int as n from idempotency_keys where key in (${list.join(',')})`,
    );
    n += row.n;
  }
  return n;
}

/**
 * Transactions the database committed and rolled back so far: a granted unit that ran out of
 * time before COMMIT rolls back, and its time on the hot rows was spent for nothing.
 */
async function xacts(url: string): Promise<{ commit: number; rollback: number }> {
  // The statistics are sent at transaction end but flushed lazily (up to 1 s): wait for them.
  await sleep(1100);
  const [row = { commit: 0, rollback: 0 }] = await psql<{ commit: number; rollback: number }>(
    url,
    `select xact_commit::int as commit, xact_rollback::int as rollback
       from pg_stat_database where datname = current_database()`,
  );
  return row;
}

/** p50 / p99 in ms of these answers. */
function latency(answers: Answer[]): { p50: number; p99: number } {
  const ms = answers.map((a) => a.ms).sort((a, b) => a - b);
  return {
    p50: Math.round(Number(percentile(ms, 0.5))),
    p99: Math.round(Number(percentile(ms, 0.99))),
  };
}

/** Runs one step and sums it up: 2xx a second, latencies, refusals and why, 503s applied. */
async function measureStep({
  port,
  dbUrl,
  firstAccount,
  hot,
  clients,
  measureS,
}: {
  port: number;
  dbUrl: string;
  firstAccount: number;
  hot: number;
  clients: number;
  measureS: number;
}) {
  const before = await refusals(port);
  const xBefore = await xacts(dbUrl);
  const { answers, errors } = await runStep({
    port,
    firstAccount,
    hot,
    clients,
    measureMs: measureS * 1000,
  });
  const quiet = await quietAfter(dbUrl, performance.now());
  const why = minus(await refusals(port), before);
  const xAfter = await xacts(dbUrl);
  const ok = answers.filter((a) => a.status >= 200 && a.status < 300);
  const refused = answers.filter((a) => a.status === 503 && a.code === 'database_unavailable');
  const unknown = answers.filter((a) => a.status === 503 && a.code === 'outcome_unknown');
  return {
    clients,
    answers: answers.length,
    okPerS: ok.length / measureS,
    all: latency(answers),
    ok: latency(ok),
    refusedMs: latency(refused),
    refused: refused.length,
    refusedApplied: await applied(
      dbUrl,
      refused.map((a) => a.key),
    ),
    unknown: unknown.length,
    why,
    // Includes the bench's own few statements (a handful a step).
    commits: xAfter.commit - xBefore.commit,
    rollbacks: xAfter.rollback - xBefore.rollback,
    other: answers.length - ok.length - refused.length - unknown.length,
    errors,
    busyAfterStop: quiet.busy,
    quietAfterMs: quiet.ms,
  };
}

export type StepResult = Awaited<ReturnType<typeof measureStep>>;

export { measureStep };
