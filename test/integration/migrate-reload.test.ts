/**
 * Done means, through a PM2 reload (issue 27): under load, a transaction holds a read lock on
 * the accounts table for several seconds while `pm2 reload web` starts workers whose release
 * brings a new migration. The first new worker migrates at boot in short tries (the old workers
 * keep serving; the queue behind each try is short), reports ready once the holder has ended,
 * and the second finds nothing pending. No request fails, none answers 5xx.
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkInvariants, seedAccounts } from '../support/ledger';
import { failures, ledgerOutcome, startLoad, tally } from '../support/load';
import { holdLock, migrationsDir } from '../support/migrate';
import { startWebCluster, type Pm2 } from '../support/pm2';
import { psql, type TestPostgres } from '../support/postgres';
import { workerLogs } from '../support/lifecycle';
import { sleep, until } from '../support/wait';

jest.setTimeout(120_000);

const HOLD_MS = 5000;
const LOOPS = 8;
const files = migrationsDir({});
let pg: TestPostgres;
let pm2: Pm2;
let url: string;
let base: string;

beforeAll(async () => {
  ({ pg, pm2, url, base } = await startWebCluster({
    LOG_LEVEL: 'info',
    KEEL_MIGRATIONS_DIR: files.dir,
  }));
});

afterAll(async () => {
  await pm2?.kill();
  await pg?.destroy();
  files.rm();
});

test('pm2 reload with a new migration while a transaction holds the table: 0 failed, 0 5xx', async () => {
  const accounts = await seedAccounts(base, 10, 1_000_000);
  const load = startLoad({
    base,
    accounts,
    concurrency: LOOPS,
    maxMs: 60_000,
    maxRequests: 100_000,
  });
  /** Every client loop has been answered for a request sent at `since` or later. */
  const everyLoopSince = (since: number, what: string) =>
    until(
      what,
      () => new Set(load.samples.filter((s) => s.start >= since).map((s) => s.loop)).size === LOOPS,
      30_000,
    );
  try {
    // The lock is taken once the load runs.
    await everyLoopSince(0, 'an answer to every client loop');
    const holder = await holdLock(url, ['select count(*) from accounts'], { holdMs: 60_000 });
    // The new release's file: the workers PM2 starts now read it; the running ones never do.
    fs.writeFileSync(
      path.join(files.dir, '0006_test_note.sql'),
      'alter table accounts add column note text;\n',
    );
    const t0 = Date.now();
    const reload = pm2.run(['reload', 'web']);
    // Held for several seconds from when a booting worker's migration connects.
    await until(
      'a booting worker migrates',
      async () => {
        const rows = await psql(
          url,
          `select 1 from pg_stat_activity where application_name like 'keel:%:migrate'`,
        );
        return rows.length > 0;
      },
      30_000,
    );
    await sleep(HOLD_MS);
    await holder.release();
    await reload;
    const reloadMs = Date.now() - t0;
    // The load goes on until the new workers have answered every client loop.
    await everyLoopSince(Date.now(), 'an answer to every client loop after the reload');
    const samples = await load.stop();

    const cols = await psql(
      url,
      `select 1 from information_schema.columns where table_name = 'accounts' and column_name = 'note'`,
    );
    expect(cols).toHaveLength(1);
    const logs = workerLogs(pm2.home);
    expect(logs.filter((l) => l.msg === 'migration applied')).toHaveLength(1);
    expect(logs.some((l) => l.msg === 'migration waits for a lock')).toBe(true);
    expect(failures(samples)).toEqual([]);
    await checkInvariants(url, ledgerOutcome(samples));
    const after = await pm2.list();
    expect(after.every((p) => p.status === 'online')).toBe(true);
    process.stdout.write(
      `migrate-reload: reload ${reloadMs} ms, ${samples.length} requests ${JSON.stringify(tally(samples))}\n`,
    );
  } finally {
    await load.stop();
  }
});
