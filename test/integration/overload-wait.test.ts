/**
 * A retry budget shorter than the request deadline: DB_RETRY_BUDGET_MS bounds the database work
 * of a request, REQUEST_TIMEOUT_MS how long it may wait for it. A transfer that waits for a
 * connection longer than its budget, but gets one before its request deadline, is served; the
 * one that held the connection past its own budget is answered 503 and is not applied.
 */
import { psql } from '../support/postgres';
import { seedAccounts } from '../support/ledger';
import { call, useWorker } from '../support/worker';

const ctx = useWorker({
  DB_POOL_MAX: '1',
  DB_RETRY_BUDGET_MS: '300',
  REQUEST_TIMEOUT_MS: '8000',
  LOG_LEVEL: 'warn',
});

/** Polls until `sql` returns a row with n > 0 (bounded: the test fails rather than hangs). */
async function until(sql: string, what: string): Promise<void> {
  const stop = Date.now() + 10000;
  while (Date.now() < stop) {
    const [row] = await psql<{ n: number }>(ctx.url, sql);
    if (row && row.n > 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`never saw ${what}`);
}

const keyRow = async (key: string) =>
  psql(
    ctx.url,
    `select 1 from idempotency_keys where key = 'gen:${key.slice('keel-gen-'.length)}'`,
  );

test('a transfer that waits for the connection longer than its budget is still served before its request deadline', async () => {
  const [a, b, c, d] = await seedAccounts(ctx.base, 4, 1_000_000);
  // Another session holds accounts a and b for a while: the first transfer takes the worker's
  // only connection and waits on their row locks, past its 300 ms budget.
  const locker = psql(
    ctx.url,
    `select count(*)::int as n, pg_sleep(2) from
       (select id from accounts where id in (${a}, ${b}) order by id for update) l`,
  );
  await until(
    `select count(*)::int as n from pg_stat_activity where wait_event = 'PgSleep'`,
    'the locker asleep',
  );
  const first = call(ctx.base, 'POST', '/api/transfers', { from: a, to: b, amount: 1 });
  await until(
    `select count(*)::int as n from pg_stat_activity
      where application_name like 'keel:%' and wait_event_type = 'Lock'`,
    'the first transfer waiting on the row lock',
  );
  // The second one (other accounts) waits for the connection, not for a lock: it gets it when
  // the first one's transaction ends (rolled back: its budget has passed), long after 300 ms.
  const second = call(ctx.base, 'POST', '/api/transfers', { from: c, to: d, amount: 1 });
  const [one, two] = await Promise.all([first, second]);
  await locker;

  expect(one.status).toBe(503);
  expect(one.body.error.code).toBe('database_unavailable');
  expect(await keyRow(one.headers.get('idempotency-key')!)).toEqual([]);

  expect(two.status).toBe(201);
  expect(two.body).toMatchObject({ from: c, to: d, amount: 1 });
  expect((await keyRow(two.headers.get('idempotency-key')!)).length).toBe(1);
  const [moved] = await psql<{ a: string; c: string }>(
    ctx.url,
    `select (select balance from accounts where id = ${a})::text as a,
            (select balance from accounts where id = ${c})::text as c`,
  );
  expect(moved).toEqual({ a: '1000000', c: '999999' });
});
