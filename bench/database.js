'use strict';
/**
 * One throwaway Postgres for a whole benchmark run (the test fixture's local cluster, so it can
 * be stopped and started for the fault run), migrated with Keel's own migrations and seeded.
 */
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { promisify } = require('node:util');
const { psql, startTestPostgres } = require('./fixtures');
const { childrenOf } = require('./sampler');

const execFileAsync = promisify(execFile);

// Enough accounts that two random transfers rarely wait on the same row lock, and balances no
// run can drain: every transfer stays a 201, never a 409.
const ACCOUNTS = 10000;
const BALANCE = 1_000_000_000_000;

async function createBenchDatabase({ app, cleanup, log }) {
  const started = Date.now();
  const pg = await startTestPostgres({ localOnly: true });
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
     from generate_series(1, ${ACCOUNTS}) g`,
  );
  const [range] = await psql(url, 'select min(id)::int as lo, max(id)::int as hi from accounts');
  const [version] = await psql(url, 'show server_version');
  const [dataDir] = await psql(url, 'show data_directory');
  const pidFile = path.join(dataDir.data_directory, 'postmaster.pid');
  log(
    `postgres ${version.server_version} on 127.0.0.1:${pg.port}, ${ACCOUNTS} accounts seeded ` +
      `(${((Date.now() - started) / 1000).toFixed(1)} s)`,
  );

  return {
    pg,
    url,
    serverVersion: version.server_version,
    accounts: { lo: range.lo, hi: range.hi },
    /** The postmaster and its children (backends, autovacuum, writer...): their CPU is ours. */
    pids() {
      let postmaster;
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
      const [row] = await psql(
        url,
        `select (select count(*) from transfers)::int as transfers,
                (select count(*) from idempotency_keys)::int as keys,
                (select sum(balance)::text from accounts) as total,
                (select sum(opening_balance)::text from accounts) as opening`,
      );
      return row;
    },
    /** Kills every backend whose application_name starts with `prefix`; returns how many. */
    async terminate(prefix) {
      const [row] = await psql(
        pg.url('postgres'),
        `select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
         where application_name like '${prefix.replace(/'/g, "''")}%'`,
      );
      return row.n;
    },
  };
}

module.exports = { createBenchDatabase };
