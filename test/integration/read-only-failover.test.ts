/**
 * A server that turned read-only under us (the old primary after a failover) answers 25006:
 * that is transient. The request is retried within its budget on a fresh session, then 503;
 * when a writable server is back within the budget, the transfer goes through.
 */
import { psql } from '../support/postgres';
import { waitFor } from '../support/wait';
import { call, useWorker } from '../support/worker';

const ctx = useWorker({ DB_RETRY_BUDGET_MS: '3000', REQUEST_TIMEOUT_MS: '8000' });

let dbName: string;
let a: number;
let b: number;

beforeAll(async () => {
  dbName = new URL(ctx.url).pathname.slice(1);
  a = (await call(ctx.w.base, 'POST', '/api/accounts', { name: 'a', balance: 100 })).body.id;
  b = (await call(ctx.w.base, 'POST', '/api/accounts', { name: 'b', balance: 0 })).body.id;
});

/** Every new session of the app's database is read-only; the open ones are ended. */
async function readOnly(on: boolean): Promise<void> {
  await psql(
    ctx.pg.url(),
    on
      ? `alter database "${dbName}" set default_transaction_read_only = on`
      : `alter database "${dbName}" reset default_transaction_read_only`,
  );
  if (on) {
    await psql(
      ctx.pg.url(),
      `select pg_terminate_backend(pid) from pg_stat_activity
       where datname = '${dbName}' and pid <> pg_backend_pid()`,
    );
  }
}

const retried25006 = () => ctx.w.logs.some((l) => l.msg === 'db retry' && l.code === '25006');

test('read-only all through the budget: retried, then 503 database_unavailable, nothing written', async () => {
  await readOnly(true);
  try {
    const r = await call(ctx.w.base, 'POST', '/api/transfers', { from: a, to: b, amount: 1 });
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('database_unavailable');
    expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(retried25006()).toBe(true);
  } finally {
    await readOnly(false);
  }
  const [row] = await psql<{ n: number }>(ctx.url, 'select count(*)::int as n from transfers');
  expect(row!.n).toBe(0);
});

test('writable again within the budget: the retry on a new session succeeds', async () => {
  ctx.w.logs.length = 0;
  await readOnly(true);
  const pending = call(ctx.w.base, 'POST', '/api/transfers', { from: a, to: b, amount: 2 });
  // Once a 25006 has been retried, the "failover" completes.
  await waitFor(retried25006);
  await readOnly(false);
  const r = await pending;
  expect(r.status).toBe(201);
  const [row] = await psql<{ n: number }>(ctx.url, 'select count(*)::int as n from transfers');
  expect(row!.n).toBe(1);
  // The read-only sessions were dropped, not kept in the pool.
  expect(ctx.w.logs.some((l) => l.msg === 'db connection closed' && l.reason === 'read_only')).toBe(
    true,
  );
});
