'use strict';
/**
 * Four projects, run as tiers by the package.json scripts (docs/testing.md):
 *  - unit: no database, no child processes (`npm run test:unit`);
 *  - integration: files whose only Postgres is the run's shared server (test/support/
 *    global-setup.ts), run in parallel (`--maxWorkers 2`);
 *  - serial: files that start PM2, their own server (a fault stops, kills or restarts it, or it
 *    needs its own settings) or scripted timelines, run one at a time (`--runInBand`); a new
 *    integration file lands here until it is listed in PARALLEL;
 *  - deploy: image, compose and VM (`npm run test:deploy`).
 */

/**
 * Integration files that tolerate a neighbour: they share the run's server or start their own
 * (own ports, own PM2_HOME, own data directory), and their claims are behaviour, or timings with
 * margins a busy neighbour does not eat. Run three at a time (`--maxWorkers 3` on two cores:
 * most of their time is spent waiting for a server, a PM2 restart or a fault's timeline).
 * Not here (the `serial` project, one at a time, after them): files whose claims are timings
 * under CPU contention or that drive CPU-heavy load themselves: `overload*` (admission timing),
 * `ledger` (its budget), `fault-proxy` (the idle-cut clock), `bad-input` (the body deadline),
 * `resilience` (recovery within 1 s under load), `stall-storm` (32 retrying clients),
 * `metrics-accounting` (a heal seen within 3 s), `resilience-pgbouncer` (outages absorbed by the
 * retry budget), `diagnose-idle` and `diagnose-tls` (an idle cutoff measured within 0.3 s),
 * `migrate-under-load` (0 5xx while a migration waits behind a held lock, under load),
 * the PM2 lifecycle timelines `lifecycle-sigterm` (50 requests all inside pg_sleep at once),
 * `lifecycle-crash` (the survivor answers while PM2 replaces a killed worker) and
 * `lifecycle-runtime` (the tree exits within the drain deadline), and `migrate-boot` (a
 * booting worker's lock-wait line); each failed next to neighbours in CI runs on two cores.
 * And `expand-contract` (PM2 reloads and a contract step under load, 0 failed requests).
 */
const PARALLEL = [
  'api',
  'budget-boot',
  'commit-outcome',
  'config-exit',
  'diagnose',
  'diagnose-cli',
  'diagnose-pgbouncer',
  'diagnose-replication',
  'driver-defects',
  'driver-patch-check',
  'embedded-db',
  'failover-async-loss',
  'failover-crash',
  'failover-roles',
  'failover-standby-first',
  'failover-switchover',
  'fd-exhaustion',
  'http-properties',
  'idempotency-janitor',
  'lifecycle-reload',
  'log-volume',
  'metrics-logs',
  'metrics-pm2',
  'metrics-siblings',
  'metrics-tls',
  'metrics-valid',
  'migrate-locks',
  'migrate-reload',
  'multi-host',
  'pm2-cluster',
  'read-only-failover',
  'read-replicas',
  'schema-change-retry',
  'shutdown-idle',
];
const DEPLOY = [
  '<rootDir>/test/integration/deploy-docker.*\\.test\\.ts$',
  '<rootDir>/test/integration/deploy/',
];
const parallelFiles = PARALLEL.map((name) => `<rootDir>/test/integration/${name}.test.ts`);

const common = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
};
/** The integration projects share one Postgres per run (KEEL_TEST_SHARED_PG=off: none). */
const withServer = {
  ...common,
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
};

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    { ...withServer, displayName: 'integration', testMatch: parallelFiles },
    {
      ...withServer,
      displayName: 'serial',
      testMatch: ['<rootDir>/test/integration/*.test.ts'],
      testPathIgnorePatterns: [
        ...DEPLOY,
        ...parallelFiles.map((f) => `${f.replace(/\./g, '\\.')}$`),
      ],
    },
    {
      ...withServer,
      displayName: 'deploy',
      testMatch: [
        '<rootDir>/test/integration/deploy-docker*.test.ts',
        '<rootDir>/test/integration/deploy/**/*.test.ts',
      ],
    },
  ],
  // Integration tests start real Postgres clusters and PM2 daemons: generous per-test limit.
  testTimeout: 120000,
  // Per-file durations for CI's "ten slowest files" (KEEL_TEST_DURATIONS names the file).
  reporters: ['default', '<rootDir>/test/support/durations-reporter.js'],
  testSequencer: '<rootDir>/test/support/sequencer.js',
  // On CI, exit as soon as the run is reported. Seen once on a fresh-clone CI run (Node 20): every
  // suite passed, then the process spun at ~80 % CPU for minutes inside Node's own exit teardown
  // (gdb: FreeEnvironment -> CleanupHandles -> uv_run, libuv with 0 active requests and 0 active
  // handles), so CI would have hung to its limit. Locally the natural exit stays, so a test that
  // leaves a handle open still shows up as "Jest did not exit".
  forceExit: process.env.CI === 'true',
};
