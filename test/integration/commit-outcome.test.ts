/**
 * A COMMIT whose answer is lost. A deferred trigger makes the COMMIT of one transfer take
 * 600 ms, so the test can cut the path exactly while the COMMIT is in flight (seen in
 * pg_stat_activity): the server commits, the answer never reaches Keel. Keel must learn the
 * truth from the key row on a fresh connection, or, with the database out of reach for the
 * rest of the budget, answer `503 outcome_unknown` with the key that finds the result.
 */
import { createFaultProxy } from '../support/fault-proxy';
import postgres from 'postgres';
import { sleep } from '../support/wait';
import { seedAccounts } from '../support/ledger';
import { psql } from '../support/postgres';
import { useFaultFixture } from '../support/fault-worker';
import { startTestWorker } from '../support/worker';

const fx = useFaultFixture();

const SLOW_AMOUNT = 777;

async function setup(env: Record<string, string>) {
  const url = await fx.pg.createDatabase();
  fx.proxy = await createFaultProxy({ targetHost: '127.0.0.1', targetPort: fx.pg.port });
  fx.w = await startTestWorker(fx.proxy.url(url), {
    DB_POOL_MAX: '2',
    DB_CONNECT_TIMEOUT_S: '1',
    LOG_LEVEL: 'info',
    ...env,
  });
  // Migrations ran at boot: only transfers of SLOW_AMOUNT commit slowly.
  await psql(
    url,
    `create function keel_test_slow_commit() returns trigger language plpgsql as
       $$ begin perform pg_sleep(0.6); return null; end $$`,
  );
  await psql(
    url,
    `create constraint trigger keel_test_slow_commit after insert on transfers
       deferrable initially deferred for each row when (new.amount = ${SLOW_AMOUNT})
       execute function keel_test_slow_commit()`,
  );
  const [from, to] = await seedAccounts(fx.w.base, 2, 10000);
  return { url, from: from!, to: to! };
}

/** Polls until a Keel backend is (`inFlight`) or is no longer (`!inFlight`) running COMMIT. */
async function commitWhile(url: string, inFlight: boolean): Promise<void> {
  const admin = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    const end = Date.now() + 5000;
    for (;;) {
      const [row] = await admin<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity
         where application_name like 'keel:%' and state = 'active' and query ilike 'commit%'`;
      if (row!.n > 0 === inFlight) return;
      if (Date.now() > end)
        throw new Error(`COMMIT ${inFlight ? 'never' : 'still'} in flight after 5 s`);
      await sleep(5);
    }
  } finally {
    await admin.end({ timeout: 1 });
  }
}

/** A Keel backend is running COMMIT (the deferred trigger is sleeping in it). */
const commitInFlight = (url: string) => commitWhile(url, true);
/** That COMMIT has ended (the server finished it, with no one left to tell). */
const commitSettled = (url: string) => commitWhile(url, false);

function transfer(base: string, body: object, key?: string) {
  return fetch(`${base}/api/transfers`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
    body: JSON.stringify(body),
  });
}

async function balances(url: string, ids: number[]): Promise<number[]> {
  const rows = await psql<{ balance: string }>(
    url,
    `select balance::text from accounts where id in (${ids.join(',')}) order by id`,
  );
  return rows.map((r) => Number(r.balance));
}

test('the path dies under COMMIT: the retry reads the key row and answers the one transfer made', async () => {
  const { url, from, to } = await setup({ REQUEST_TIMEOUT_MS: '8000', DB_RETRY_BUDGET_MS: '6000' });
  const answer = transfer(fx.w!.base, { from, to, amount: SLOW_AMOUNT });
  await commitInFlight(url);
  // Keel's connection goes; the server finishes the COMMIT with no one to tell.
  fx.proxy!.resetAll('rst');
  const res = await answer;
  const body = (await res.json()) as { id: number; amount: number };
  expect(res.status).toBe(201);
  expect(body.amount).toBe(SLOW_AMOUNT);
  // Not a replay for this client: it is its own request's result.
  expect(res.headers.get('idempotent-replayed')).toBeNull();
  expect(res.headers.get('idempotency-key')).toMatch(/^keel-gen-/);
  const rows = await psql<{ id: string }>(
    url,
    `select id::text from transfers where amount = ${SLOW_AMOUNT}`,
  );
  expect(rows.map((r) => Number(r.id))).toEqual([body.id]);
  expect(await balances(url, [from, to])).toEqual([10000 - SLOW_AMOUNT, 10000 + SLOW_AMOUNT]);
  expect(fx.w!.worker.stats.retries).toBeGreaterThan(0);
});

test('the database stays out of reach after the COMMIT: 503 outcome_unknown, and its key finds the result', async () => {
  const { url, from, to } = await setup({ REQUEST_TIMEOUT_MS: '2000', DB_RETRY_BUDGET_MS: '2000' });
  const answer = transfer(fx.w!.base, { from, to, amount: SLOW_AMOUNT });
  await commitInFlight(url);
  // Every path to the database is gone until the answer is out.
  fx.proxy!.setMode('refuse');
  fx.proxy!.resetAll('rst');
  const res = await answer;
  const body = (await res.json()) as { error: { code: string } };
  expect(res.status).toBe(503);
  expect(body.error.code).toBe('outcome_unknown');
  expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
  const key = res.headers.get('idempotency-key');
  expect(key).toMatch(/^keel-gen-/);
  // It did commit: the answer said "unknown", not "not applied".
  await commitSettled(url);
  const [made] = await psql<{ n: number }>(
    url,
    `select count(*)::int as n from transfers where amount = ${SLOW_AMOUNT}`,
  );
  expect(made!.n).toBe(1);

  fx.proxy!.setMode('pass');
  const retry = await transfer(fx.w!.base, { from, to, amount: SLOW_AMOUNT }, key!);
  const replay = (await retry.json()) as { id: number; amount: number };
  expect(retry.status).toBe(201);
  expect(retry.headers.get('idempotent-replayed')).toBe('true');
  expect(replay.amount).toBe(SLOW_AMOUNT);
  const rows = await psql<{ id: string }>(
    url,
    `select id::text from transfers where amount = ${SLOW_AMOUNT}`,
  );
  expect(rows.map((r) => Number(r.id))).toEqual([replay.id]);
  expect(await balances(url, [from, to])).toEqual([10000 - SLOW_AMOUNT, 10000 + SLOW_AMOUNT]);
});

test('a transaction orphaned by a dead path gives its row locks back after DB_IDLE_IN_TX_TIMEOUT_MS', async () => {
  const { url, from, to } = await setup({
    DB_IDLE_IN_TX_TIMEOUT_MS: '1000',
    REQUEST_TIMEOUT_MS: '2000',
    DB_RETRY_BUDGET_MS: '2000',
  });
  const admin = postgres(url, { max: 2, onnotice: () => undefined });
  try {
    // The test holds `to`, so Keel's transfer waits on the lock inside its transaction.
    let letGo = () => undefined as void;
    let locked = () => undefined as void;
    const held = new Promise<void>((r) => (letGo = r));
    const hasLock = new Promise<void>((r) => (locked = r));
    const blocker = admin.begin(async (tx) => {
      await tx`select 1 from accounts where id = ${to} for update`;
      locked();
      await held;
    });
    await hasLock;
    const answer = transfer(fx.w!.base, { from, to, amount: 5 });
    const end = Date.now() + 5000;
    for (;;) {
      const [row] = await admin<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity
         where application_name like 'keel:%' and wait_event_type = 'Lock'`;
      if (row!.n > 0) break;
      if (Date.now() > end) throw new Error('Keel never waited on the lock');
      await sleep(5);
    }
    // The path dies, closes and all; then the lock is granted: Keel's backend holds both rows,
    // and the rest of its transaction is lost in the partition.
    fx.proxy!.setMode('partition');
    letGo();
    await blocker;
    const res = await answer;
    expect(res.status).toBe(503);
    // Keel gave up on that connection long ago; only the server's own timeout frees the rows.
    const freedBy = Date.now() + 5000;
    let stuck: Array<{ pid: number; state: string }> = [];
    for (;;) {
      stuck = await admin<{ pid: number; state: string }[]>`
        select pid, state from pg_stat_activity
         where application_name like 'keel:%' and state like 'idle in transaction%'`;
      if (stuck.length === 0 || Date.now() > freedBy) break;
      await sleep(50);
    }
    expect(stuck).toEqual([]);
    const lockable = await admin`
      select id from accounts where id in (${from}, ${to}) for update nowait`;
    expect(lockable.length).toBe(2);
    fx.proxy!.setMode('pass');
    // Nothing was applied: the COMMIT was never sent.
    expect(await balances(url, [from, to])).toEqual([10000, 10000]);
  } finally {
    await admin.end({ timeout: 1 });
  }
});
