/**
 * `npm run bench -- --overload`: keyless transfers between two hot accounts, Keel under PM2
 * (2 workers) with 2 connections a worker and a 300 ms budget. First its capacity (4 clients),
 * then 10x and 50x as many clients. For each step: 2xx a second against capacity (goodput),
 * p99, how many answers were 503 and how many of those transfers are in the database anyway
 * (must be 0), and how long Keel's backends stayed busy after the load stopped.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool, request } from 'undici';
import { psql } from './fixtures';
import * as out from './output';
import { setUpKeel } from './setup';
import { errorName } from './errors';
import { percentile } from './stats';
import type { RunDeps } from './types';

interface Answer {
  status: number;
  ms: number;
  key: string | null;
  code: string | null;
}

const KEEL_ENV = { DB_POOL_MAX: '2', REQUEST_TIMEOUT_MS: '300', DB_RETRY_BUDGET_MS: '300' };
const STEPS = [
  { label: 'capacity', clients: 4 },
  { label: '10x', clients: 40 },
  { label: '50x', clients: 200 },
];
// Backends still busy this long after the load stopped would be a defect: the poll ends here.
const QUIET_LIMIT_MS = 15000;

async function runStep({
  port,
  accounts,
  clients,
  measureMs,
}: {
  port: number;
  accounts: { lo: number; hi: number };
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
    Array.from({ length: clients }, async (_, i) => {
      for (let n = 0; performance.now() < until; n++) {
        const [from, to] =
          (i + n) % 2 === 0 ? [accounts.lo, accounts.lo + 1] : [accounts.lo + 1, accounts.lo];
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
 * Why units were refused, summed over the workers: the gate's reasons (`keel_db_shed_total`)
 * and units abandoned at the deadline while running (`keel_db_queries_total{outcome="timeout"}`).
 */
async function refusals(port: number): Promise<Record<string, number>> {
  const text = await (await request(`http://127.0.0.1:${port}/metrics`)).body.text();
  const sums: Record<string, number> = {
    overload: 0,
    full: 0,
    deadline: 0,
    aborted: 0,
    timeout: 0,
  };
  for (const line of text.split('\n')) {
    const shed = /^keel_db_shed_total\{[^}]*reason="(\w+)"[^}]*\} (\d+)/.exec(line);
    if (shed) sums[shed[1]!] = (sums[shed[1]!] ?? 0) + Number(shed[2]);
    const q = /^keel_db_queries_total\{[^}]*outcome="timeout"[^}]*\} (\d+)/.exec(line);
    if (q) sums.timeout = (sums.timeout ?? 0) + Number(q[1]);
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

async function runOverload({ opts, cleanup, log }: RunDeps) {
  const started = new Date();
  const { app, db, keel } = await setUpKeel({
    opts: { ...opts, keelEnv: { ...KEEL_ENV, ...opts.keelEnv } },
    cleanup,
    log,
  });
  log('[keel] starting');
  // The idempotency table must stay bounded (generated keys expire in minutes, client keys in 48 h).
  const keysBefore = (await db.counts()).keys;
  await keel.start();
  const measureMs = opts.measureS * 1000;
  const rows = [];
  let capacity: number | null = null;
  for (const step of STEPS) {
    log(`[${step.label}] ${step.clients} clients for ${opts.measureS} s`);
    const before = await refusals(keel.port);
    const { answers, errors } = await runStep({
      port: keel.port,
      accounts: db.accounts,
      clients: step.clients,
      measureMs,
    });
    const stoppedAt = performance.now();
    const quiet = await quietAfter(db.url, stoppedAt);
    const why = minus(await refusals(keel.port), before);
    const ok = answers.filter((a) => a.status >= 200 && a.status < 300);
    const refused = answers.filter((a) => a.status === 503 && a.code === 'database_unavailable');
    const unknown = answers.filter((a) => a.status === 503 && a.code === 'outcome_unknown');
    const other = answers.length - ok.length - refused.length - unknown.length;
    const okPerS = ok.length / opts.measureS;
    if (capacity === null) capacity = okPerS;
    const ms = answers.map((a) => a.ms).sort((a, b) => a - b);
    const okMs = ok.map((a) => a.ms).sort((a, b) => a - b);
    const row = {
      step: step.label,
      clients: step.clients,
      answers: answers.length,
      okPerS: Math.round(okPerS),
      goodput: okPerS / capacity,
      p99Ms: Math.round(Number(percentile(ms, 0.99))),
      okP99Ms: Math.round(Number(percentile(okMs, 0.99))),
      refused: refused.length,
      refusedApplied: await applied(
        db.url,
        refused.map((a) => a.key),
      ),
      unknown: unknown.length,
      why,
      other,
      errors,
      busyAfterStop: quiet.busy,
      quietAfterMs: quiet.ms,
    };
    log(JSON.stringify(row));
    rows.push(row);
    await sleep(1000);
  }
  const counts = await db.counts();
  const file = out.writeResult(`overload-${out.timestamp(started)}.json`, {
    kind: 'overload',
    startedAt: started.toISOString(),
    machine: out.machine(),
    distFingerprint: app.fingerprint,
    keelEnv: KEEL_ENV,
    rows,
    database: { ...counts, keysBefore },
  });
  process.stdout.write(
    `${out.ledgerCheck(counts)}\n` +
      `idempotency_keys rows: ${keysBefore} before, ${counts.keys} after\nresults: ${file}\n`,
  );
  if (Object.keys(opts.keelEnv).length > 0) return;
  out.updateLatest(
    'overload',
    [
      `## Overload (\`npm run bench -- --overload\`, ${started.toISOString().slice(0, 16)}Z)`,
      '',
      `Keel under PM2 (2 workers, \`DB_POOL_MAX=2\`, \`REQUEST_TIMEOUT_MS=300\`, \`DB_RETRY_BUDGET_MS=300\`), ` +
        `keyless \`POST /api/transfers\` between two hot accounts, closed-loop clients, ${opts.measureS} s a step. ` +
        '"503 applied" counts the transfers answered `503 database_unavailable` whose generated key is in the database (must be 0).',
      '',
      'Units refused: by the gate at the door (`overload`: even served next its wait would pass its budget; `full`: the wait was full), ' +
        'at their turn or in the wait (`deadline`: the request deadline fired), or abandoned running at the deadline (`timeout`).',
      '',
      '| step | clients | 2xx/s | goodput vs capacity | p99 (all) | p99 (2xx) | 503 unavailable | refused: overload / full / deadline / timeout | 503 applied | 503 outcome_unknown | Keel backends busy after stop |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...rows.map(
        (r) =>
          `| ${r.step} | ${r.clients} | ${r.okPerS} | ${(r.goodput * 100).toFixed(0)} % | ${r.p99Ms} ms | ${r.okP99Ms} ms | ` +
          `${r.refused} | ${r.why.overload} / ${r.why.full} / ${r.why.deadline} / ${r.why.timeout} | ${r.refusedApplied} | ${r.unknown} | ${r.busyAfterStop === 0 ? `idle after ${r.quietAfterMs} ms` : `${r.busyAfterStop} still busy`} |`,
      ),
      '',
      `Machine: ${out.machineLine(out.machine(), db.serverVersion, app.fingerprint)}.`,
    ].join('\n'),
  );
}

export { runOverload };
