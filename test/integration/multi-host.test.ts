/**
 * A DATABASE_URL with two hosts, the first of which is not writable (a standby, or the old
 * primary after a failover): with target_session_attrs=read-write (added by the config) the
 * worker finds the writable one, and follows when the roles swap. Two real Postgres servers.
 */
import { migrate, MIGRATIONS_DIR } from '../../src/db/migrate';
import { psql, startTestPostgres, type TestPostgres } from '../support/postgres';
import { call, startTestWorker, type TestWorker } from '../support/worker';

let first: TestPostgres;
let second: TestPostgres;
let w: TestWorker | undefined;
const DB = 'keel_multi';

beforeAll(async () => {
  [first, second] = await Promise.all([
    startTestPostgres({ localOnly: true }),
    startTestPostgres({ localOnly: true }),
  ]);
  await Promise.all([first.createDatabase(DB), second.createDatabase(DB)]);
});

afterAll(async () => {
  await w?.stop();
  await Promise.all([first?.destroy(), second?.destroy()]);
});

/** `on`: every new session of the database is read-only (what a standby looks like). */
async function readOnly(pg: TestPostgres, on: boolean): Promise<void> {
  await psql(
    pg.url(),
    `alter database ${DB} ${on ? 'set default_transaction_read_only = on' : 'reset default_transaction_read_only'}`,
  );
  await psql(
    pg.url(),
    `select pg_terminate_backend(pid) from pg_stat_activity where datname = '${DB}' and pid <> pg_backend_pid()`,
  );
}

function multiUrl(): string {
  const u = new URL(first.url(DB));
  return `postgres://${u.username}:${u.password}@127.0.0.1:${first.port},127.0.0.1:${second.port}/${DB}`;
}

const count = async (pg: TestPostgres) =>
  (
    await psql<{ n: number }>(pg.url(DB), `select count(*)::int as n from accounts`).catch(() => [
      { n: -1 },
    ])
  )[0]!.n;

test('the first host is read-only: migrations and writes go to the second', async () => {
  await readOnly(first, true);
  w = await startTestWorker(multiUrl());
  for (let i = 0; i < 5; i++) {
    const r = await call(w.base, 'POST', '/api/accounts', { name: `n${i}` });
    expect(r.status).toBe(201);
  }
  expect(await count(second)).toBe(5);
  expect(await count(first)).toBe(-1); // never migrated: no accounts table there
});

test('a failover (the roles swap): writes follow to the new primary within the retry budget', async () => {
  // The new primary has the schema (in real life: replication).
  await psql(first.url(DB), 'select 1');
  await readOnly(first, false);
  const schema = await psql<{ n: number }>(
    first.url(DB),
    `select count(*)::int as n from pg_tables where tablename = 'accounts'`,
  );
  if (schema[0]!.n === 0) {
    await migrate({
      url: first.url(DB),
      ssl: false,
      logger: w!.worker.logger,
      dir: MIGRATIONS_DIR,
    });
  }
  await readOnly(second, true);
  const r = await call(w!.base, 'POST', '/api/accounts', { name: 'after-failover' });
  expect(r.status).toBe(201);
  expect(await count(first)).toBe(1);
  expect(await count(second)).toBe(5);
});
