/**
 * The migrate command against a table somebody else holds: it waits under a short lock_timeout
 * (the queue behind it is never held long), retries, names the blocker while it waits, applies
 * the file once the blocker ends, and gives up with exit 75 when its budget runs out first.
 * Files marked `-- keel:no-transaction` build indexes concurrently, and a build that failed
 * (leaving an INVALID index) is rebuilt.
 */
import { psql, startTestPostgres, type TestPostgres } from '../support/postgres';
import { holdLock, migrateWhileHeld, migrationsDir, runMigrate } from '../support/migrate';

jest.setTimeout(60_000);

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startTestPostgres();
});
afterAll(async () => {
  await pg?.destroy();
});

const ADD_COLUMN = { '0006_test_note.sql': 'alter table accounts add column note text;\n' };

async function columns(url: string, table: string): Promise<string[]> {
  const rows = await psql<{ column_name: string }>(
    url,
    `select column_name from information_schema.columns where table_name = '${table}'`,
  );
  return rows.map((r) => r.column_name);
}

function env(url: string, dir: string, more: Record<string, string> = {}) {
  return { DATABASE_URL: url, KEEL_MIGRATIONS_DIR: dir, ...more };
}

test('an ALTER behind a held lock waits in short tries, names the blocker, and applies once it ends', async () => {
  const url = await pg.createDatabase();
  const files = migrationsDir(ADD_COLUMN);
  const holder = await holdLock(url, ['lock table accounts in access share mode'], {
    holdMs: 60_000,
  });
  try {
    const { run } = await migrateWhileHeld(url, holder, env(url, files.dir), 2000);
    expect(run.code).toBe(0);
    expect(await columns(url, 'accounts')).toContain('note');
    const waits = run.logs.filter((l) => l.msg === 'migration waits for a lock');
    expect(waits.length).toBeGreaterThan(0);
    expect(waits[0]).toMatchObject({ migration: '0006_test_note.sql' });
    expect(String((waits[0]!.blockers as string[])[0])).toContain(`pid ${holder.pid} test:holder`);
    expect(run.logs.some((l) => l.msg === 'migration applied')).toBe(true);
  } finally {
    await holder.release();
    files.rm();
  }
});

test('the budget runs out while the blocker stays: exit 75, nothing applied, the blocker named', async () => {
  const url = await pg.createDatabase();
  const files = migrationsDir(ADD_COLUMN);
  const holder = await holdLock(url, ['lock table accounts in access share mode'], {
    holdMs: 20_000,
  });
  try {
    const run = await runMigrate(env(url, files.dir, { KEEL_MIGRATION_BUDGET_MS: '1500' }));
    expect(run.code).toBe(75);
    const last = run.logs.find((l) => l.level === 'error');
    expect(last).toMatchObject({ migration: '0006_test_note.sql', exitCode: 75 });
    expect(String((last!.blockers as string[])[0])).toContain(`pid ${holder.pid}`);
    expect(await columns(url, 'accounts')).not.toContain('note');
    const applied = await psql(
      url,
      `select 1 from keel_migrations where name = '0006_test_note.sql'`,
    );
    expect(applied).toHaveLength(0);
  } finally {
    await holder.release();
    files.rm();
  }
});

test('a concurrent index build that times out leaves an INVALID index, which the retry rebuilds', async () => {
  const url = await pg.createDatabase();
  const files = migrationsDir({
    '0006_test_index.sql':
      '-- keel:no-transaction\n' +
      'create index concurrently if not exists accounts_name_idx on accounts (name);\n',
  });
  // A writer's open transaction: the build waits for it after creating the index's catalog row.
  await psql(
    url,
    `insert into accounts (name, balance, opening_balance, creation_key)
                   values ('a', 1, 1, gen_random_uuid())`,
  );
  const holder = await holdLock(url, ["update accounts set name = 'b'"], { holdMs: 60_000 });
  try {
    const { run } = await migrateWhileHeld(
      url,
      holder,
      env(url, files.dir, { KEEL_MIGRATION_LOCK_TIMEOUT_MS: '200' }),
      1500,
    );
    expect(run.code).toBe(0);
    const [index] = await psql<{ valid: boolean }>(
      url,
      `select indisvalid as valid from pg_index where indexrelid = 'accounts_name_idx'::regclass`,
    );
    expect(index).toEqual({ valid: true });
    expect(
      run.logs.some((l) => l.msg === 'invalid index left by a failed concurrent build: rebuilding'),
    ).toBe(true);
  } finally {
    await holder.release();
    files.rm();
  }
});

test('a no-transaction file with two statements is refused before anything runs: exit 1', async () => {
  const url = await pg.createDatabase();
  const files = migrationsDir({
    '0006_test_two.sql':
      '-- keel:no-transaction\n' +
      'create index concurrently a_idx on accounts (name);\n' +
      'alter table accounts add column note text;\n',
  });
  try {
    const run = await runMigrate(env(url, files.dir));
    expect(run.code).toBe(1);
    const err = run.logs.find((l) => l.level === 'error');
    expect(String(err?.error)).toContain('holds exactly one statement, found 2');
    expect(await columns(url, 'accounts')).not.toContain('note');
  } finally {
    files.rm();
  }
});
