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
 * Integration files that share the run's server (or need none, or start their own without a
 * fault timeline) and tolerate a neighbour, run two at a time. Every other integration file
 * runs in the `serial` project, one at a time: PM2 clusters and their lifecycle timelines, own
 * servers with fault timelines, and the timing claims a busy neighbour on two cores breaks
 * (overload, ledger's budget, fault-proxy's idle clock, bad-input's body deadline, diagnose's
 * idle cutoff within 0.3 s, the metrics heal within 3 s). Wider parallelism (three workers, the
 * fault and PM2 files, the deploy tier in the same stage) failed a timing file in each of five CI
 * runs here.
 */
const PARALLEL = [
  'api',
  'config-exit',
  'driver-patch-check',
  'fd-exhaustion',
  'idempotency-janitor',
  'log-volume',
  'metrics-siblings',
  'metrics-valid',
  'migrate-locks',
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
