/**
 * A server that turned read-only under us (the old primary after a failover) answers 25006:
 * that is transient. The request is retried within its budget on a fresh session, then 503;
 * when a writable server is back within the budget, the transfer goes through.
 */
import { psql, startTestPostgres, type TestPostgres } from '../support/postgres';
import { waitFor } from '../support/wait';
import { call, startTestWorker, type TestWorker } from '../support/worker';

let pg: TestPostgres;
let url: string;
let dbName: string;
let w: TestWorker;
let a: number;
let b: number;

beforeAll(async () => {
  pg = await startTestPostgres();
  url = await pg.createDatabase();
  dbName = new URL(url).pathname.slice(1);
  w = await startTestWorker(url, { DB_RETRY_BUDGET_MS: '3000', REQUEST_TIMEOUT_MS: '8000' });
  a = (await call(w.base, 'POST', '/api/accounts', { name: 'a', balance: 100 })).body.id;
  b = (await call(w.base, 'POST', '/api/accounts', { name: 'b', balance: 0 })).body.id;
});

afterAll(async () => {
  await w?.stop();
  await pg?.destroy();
});

/** Every new session of the app's database is read-only; the open ones are ended. */
async function readOnly(on: boolean): Promise<void> {
  await psql(
    pg.url(),
    on
      ? `alter database "${dbName}" set default_transaction_read_only = on`
      : `alter database "${dbName}" reset default_transaction_read_only`,
  );
  if (on) {
    await psql(
      pg.url(),
      `select pg_terminate_backend(pid) from pg_stat_activity
       where datname = '${dbName}' and pid <> pg_backend_pid()`,
    );
  }
}

const retried25006 = () => w.logs.some((l) => l.msg === 'db retry' && l.code === '25006');

test('read-only all through the budget: retried, then 503 database_unavailable, nothing written', async () => {
  await readOnly(true);
  try {
    const r = await call(w.base, 'POST', '/api/transfers', { from: a, to: b, amount: 1 });
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('database_unavailable');
    expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(retried25006()).toBe(true);
  } finally {
    await readOnly(false);
  }
  const [row] = await psql<{ n: number }>(url, 'select count(*)::int as n from transfers');
  expect(row!.n).toBe(0);
});

test('writable again within the budget: the retry on a new session succeeds', async () => {
  w.logs.length = 0;
  await readOnly(true);
  const pending = call(w.base, 'POST', '/api/transfers', { from: a, to: b, amount: 2 });
  // Once a 25006 has been retried, the "failover" completes.
  await waitFor(retried25006);
  await readOnly(false);
  const r = await pending;
  expect(r.status).toBe(201);
  const [row] = await psql<{ n: number }>(url, 'select count(*)::int as n from transfers');
  expect(row!.n).toBe(1);
  // The read-only sessions were dropped, not kept in the pool.
  expect(w.logs.some((l) => l.msg === 'db connection closed' && l.reason === 'read_only')).toBe(
    true,
  );
});
