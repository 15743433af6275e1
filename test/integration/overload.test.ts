/**
 * Overload on hot rows: many keyless clients transfer between two accounts through a worker
 * with 2 connections and a 300 ms budget. The answers must be the truth: every transfer
 * answered `503 database_unavailable` is absent from the database (its generated
 * Idempotency-Key names no row), every 2xx is there exactly once, and once the load stops no
 * backend of Keel is still working for a request that was already answered.
 */
import { Agent, request } from 'undici';
import { checkInvariants, seedAccounts } from '../support/ledger';
import { psql } from '../support/postgres';
import { useWorker } from '../support/worker';

const CLIENTS = 150;
const LOAD_MS = 4000;

const ctx = useWorker({
  DB_POOL_MAX: '2',
  REQUEST_TIMEOUT_MS: '300',
  DB_RETRY_BUDGET_MS: '300',
  LOG_LEVEL: 'warn',
});

interface Answer {
  status: number;
  code: string | null;
  key: string | null;
  retryAfter: string | null;
  id: number | null;
}

async function transfer(agent: Agent, from: number, to: number): Promise<Answer> {
  const res = await request(`${ctx.w.base}/api/transfers`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ from, to, amount: 1 }),
  });
  const body = (await res.body.json()) as { id?: number; error?: { code: string } };
  const header = (name: string) => {
    const v = res.headers[name];
    return typeof v === 'string' ? v : null;
  };
  return {
    status: res.statusCode,
    code: body.error?.code ?? null,
    key: header('idempotency-key'),
    retryAfter: header('retry-after'),
    id: body.id ?? null,
  };
}

/** Keel's own sessions that are doing anything (a statement, or a transaction left open). */
async function busyBackends(): Promise<number> {
  const rows = await psql<{ n: string }>(
    ctx.url,
    `select count(*)::text as n from pg_stat_activity
      where datname = current_database() and application_name like 'keel:%' and state <> 'idle'`,
  );
  return Number(rows[0]!.n);
}

test('keyless transfers on two hot rows, 2 connections, 300 ms budget: no 503 is ever applied', async () => {
  const [a, b] = await seedAccounts(ctx.w.base, 2, 1_000_000_000);
  const agent = new Agent({ connections: CLIENTS, headersTimeout: 10000, bodyTimeout: 10000 });
  const answers: Answer[] = [];
  const errors: string[] = [];
  const until = Date.now() + LOAD_MS;
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, i) => {
      // Bounded: at most 2,000 requests a client, and never past LOAD_MS.
      for (let n = 0; n < 2000 && Date.now() < until; n++) {
        const [from, to] = (i + n) % 2 === 0 ? [a!, b!] : [b!, a!];
        try {
          answers.push(await transfer(agent, from, to));
        } catch (err) {
          errors.push((err as Error).message);
        }
      }
    }),
  );
  const stoppedAt = Date.now();
  await agent.close();

  // No backend keeps working for requests whose clients have been answered.
  let busy = await busyBackends();
  while (busy > 0 && Date.now() - stoppedAt < 5000) {
    await new Promise((r) => setTimeout(r, 50));
    busy = await busyBackends();
  }
  const quietAfterMs = Date.now() - stoppedAt;

  const count = (s: number) => answers.filter((x) => x.status === s).length;
  const unavailable = answers.filter((x) => x.status === 503);
  console.log(
    `overload: clients=${CLIENTS} answers=${answers.length} 201=${count(201)} 503=${unavailable.length}` +
      ` codes=${JSON.stringify([...new Set(unavailable.map((x) => x.code))])} shed=${JSON.stringify(ctx.w.worker.stats.shed)}` +
      ` quietAfterMs=${quietAfterMs}`,
  );
  expect(errors).toEqual([]);
  expect(busy).toBe(0);
  expect(answers.every((x) => x.status === 201 || x.status === 503)).toBe(true);
  // The load really overloaded the worker, and the worker still served.
  expect(unavailable.length).toBeGreaterThan(0);
  expect(count(201)).toBeGreaterThan(0);
  // Every answer names the key it was (or was not) applied under.
  expect(answers.every((x) => x.key !== null && /^keel-gen-/.test(x.key))).toBe(true);
  for (const x of unavailable) {
    expect(x.retryAfter).toMatch(/^\d+$/);
    expect(['database_unavailable', 'outcome_unknown']).toContain(x.code);
  }

  const stored = (keys: string[]) =>
    keys.length === 0
      ? Promise.resolve([] as Array<{ key: string; status: number }>)
      : psql<{ key: string; status: number }>(
          ctx.url,
          `select key, status from idempotency_keys where key = any(array[${keys
            .map((k) => `'gen:${k.slice('keel-gen-'.length)}'`)
            .join(',')}])`,
        );
  const refusedKeys = unavailable.filter((x) => x.code === 'database_unavailable');
  const applied = await stored(refusedKeys.map((x) => x.key!));
  expect(applied).toEqual([]);
  const ok = answers.filter((x) => x.status === 201);
  expect((await stored(ok.map((x) => x.key!))).length).toBe(ok.length);
  const [transfers] = await psql<{ n: string }>(
    ctx.url,
    `select count(*)::text as n from transfers`,
  );
  // Every transfer in the database was answered 201, or 503 outcome_unknown (never 'unavailable').
  const unknown = unavailable.length - refusedKeys.length;
  expect(Number(transfers!.n)).toBeGreaterThanOrEqual(ok.length);
  expect(Number(transfers!.n)).toBeLessThanOrEqual(ok.length + unknown);
  const ids = ok.map((x) => x.id!);
  expect(new Set(ids).size).toBe(ids.length);
  if (ids.length) {
    const [found] = await psql<{ n: string }>(
      ctx.url,
      `select count(*)::text as n from transfers where id = any(array[${ids.join(',')}]::bigint[])`,
    );
    expect(Number(found!.n)).toBe(ids.length);
  }
  await checkInvariants(ctx.url);
});
