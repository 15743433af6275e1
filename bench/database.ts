/**
 * One throwaway Postgres for a whole benchmark run (the test fixture's local cluster, so it can
 * be stopped and started for the fault run), migrated with Keel's own migrations and seeded.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { psql, startTestPostgres } from './fixtures';
import { childrenOf } from './sampler';
import type { Snapshot } from './snapshot';
import type { Cleanup, Log } from './types';

const execFileAsync = promisify(execFile);

// Enough accounts that two random transfers rarely wait on the same row lock, and balances no
// run can drain: every transfer stays a 201, never a 409.
const ACCOUNTS = 10000;
const BALANCE = 1_000_000_000_000;

export type BenchDatabase = Awaited<ReturnType<typeof createBenchDatabase>>;

async function createBenchDatabase({
  app,
  cleanup,
  log,
  settings,
  accounts = ACCOUNTS,
}: {
  app: Snapshot;
  cleanup: Cleanup;
  log: Log;
  /** Extra postgresql.conf settings (the stall run's max_connections). */
  settings?: Record<string, string | number>;
  /** Accounts to seed (the growth run starts small and grows them). */
  accounts?: number;
}) {
  const started = Date.now();
  const pg = await startTestPostgres({ localOnly: true, ...(settings ? { settings } : {}) });
  cleanup.add('destroy postgres', () => pg.destroy());
  const url = await pg.createDatabase('keel_bench');

  // Keel's own migration runner, so both targets meet exactly the schema Keel expects.
  await execFileAsync(process.execPath, [path.join(app.root, 'dist', 'cli', 'migrate.js')], {
    cwd: app.root,
    env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'warn' },
    timeout: 60000,
  });
  await psql(
    url,
    `insert into accounts (name, balance, opening_balance, creation_key)
     select 'bench-' || g, ${BALANCE}, ${BALANCE}, gen_random_uuid()
     from generate_series(1, ${accounts}) g`,
  );
  const [range] = await psql<{ lo: number; hi: number }>(
    url,
    'select min(id)::int as lo, max(id)::int as hi from accounts',
  );
  const [version] = await psql<{ server_version: string }>(url, 'show server_version');
  const [dataDir] = await psql<{ data_directory: string }>(url, 'show data_directory');
  if (!range || !version || !dataDir) throw new Error('the bench database answered no rows');
  const pidFile = path.join(dataDir.data_directory, 'postmaster.pid');
  log(
    `postgres ${version.server_version} on 127.0.0.1:${pg.port}, ${accounts} accounts seeded ` +
      `(${((Date.now() - started) / 1000).toFixed(1)} s)`,
  );

  return {
    pg,
    url,
    serverVersion: version.server_version,
    accounts: { lo: range.lo, hi: range.hi },
    /** The postmaster and its children (backends, autovacuum, writer...): their CPU is ours. */
    pids(): number[] {
      let postmaster: number;
      try {
        postmaster = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
      } catch {
        return [];
      }
      return [postmaster, ...childrenOf(postmaster)];
    },
    /** Between measurements: the same starting point for each target (no dead rows to skip). */
    async settle() {
      await psql(url, 'vacuum analyze');
      await psql(url, 'checkpoint');
    },
    async counts() {
      const [row] = await psql<{
        transfers: number;
        keys: number;
        total: string;
        opening: string;
      }>(
        url,
        `select (select count(*) from transfers)::int as transfers,
                (select count(*) from idempotency_keys)::int as keys,
                (select sum(balance)::text from accounts) as total,
                (select sum(opening_balance)::text from accounts) as opening`,
      );
      if (!row) throw new Error('no counts');
      return row;
    },
    /** Kills every backend whose application_name starts with `prefix`; returns how many. */
    async terminate(prefix: string): Promise<number> {
      const [row] = await psql<{ n: number }>(
        pg.url('postgres'),
        `select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
         where application_name like '${prefix.replace(/'/g, "''")}%'`,
      );
      return row?.n ?? 0;
    },
  };
}

export { createBenchDatabase, BALANCE };
