/**
 * A worker that boots while a table its migration needs is locked: it never crashes (a restarted
 * worker would only queue behind the same blocker), serves /readyz 503 while its schema is not
 * current, and is ready once the blocker ends. A worker whose files are all applied (the deploy's
 * migrate step ran first) serves at once, whatever is locked.
 */
import { psql, startTestPostgres, type TestPostgres } from '../support/postgres';
import { holdLock, migrationsDir } from '../support/migrate';
import { startTestWorker } from '../support/worker';
import { until } from '../support/wait';

jest.setTimeout(60_000);

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startTestPostgres();
});
afterAll(async () => {
  await pg?.destroy();
});

const BOOT = { READY_WAIT_MS: '300', KEEL_MIGRATION_BUDGET_MS: '800' };

async function readyz(base: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${base}/readyz`);
  return { status: res.status, body: await res.json() };
}

test('a pending migration behind a held lock: not ready (no crash) until the blocker ends', async () => {
  const url = await pg.createDatabase();
  const files = migrationsDir({
    '0006_test_note.sql': 'alter table accounts add column note text;',
  });
  const holder = await holdLock(url, ['lock table accounts in access share mode'], {
    holdMs: 20_000,
  });
  const w = await startTestWorker(
    url,
    { ...BOOT, KEEL_MIGRATIONS_DIR: files.dir },
    {
      awaitPrepared: false,
    },
  );
  try {
    // Past a whole budget: the worker said why and stays up, not ready.
    const gaveUp = 'schema not current: a migration waits for locks, not ready yet';
    await until(gaveUp, () => w.logs.some((l) => l.msg === gaveUp), 15_000);
    expect(await readyz(w.base)).toEqual({
      status: 503,
      body: { status: 'unavailable', reason: 'database' },
    });
    expect(w.exitCodes).toEqual([]);
    expect(w.logs.some((l) => l.msg === 'migration waits for a lock')).toBe(true);
    await holder.release();
    await w.worker.prepared;
    expect((await readyz(w.base)).status).toBe(200);
    const cols = await psql(
      url,
      `select 1 from information_schema.columns where table_name = 'accounts' and column_name = 'note'`,
    );
    expect(cols).toHaveLength(1);
    expect(w.exitCodes).toEqual([]);
  } finally {
    await holder.release();
    await w.stop();
    files.rm();
  }
});

test('nothing pending: the worker serves at once while the table is locked exclusively', async () => {
  const url = await pg.createDatabase();
  const holder = await holdLock(url, ['lock table accounts in access exclusive mode'], {
    holdMs: 20_000,
  });
  const w = await startTestWorker(url, BOOT, { awaitPrepared: false });
  try {
    await w.worker.prepared;
    expect(await readyz(w.base)).toEqual({ status: 200, body: { status: 'ready' } });
  } finally {
    await holder.release();
    await w.stop();
  }
});
