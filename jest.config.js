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
 * Integration files that share the run's server (or need none) and tolerate a neighbour. Not
 * here: files whose claims are timings under CPU contention (overload, ledger's budget,
 * fault-proxy's idle-cut clock, bad-input's body deadline); on two cores a neighbour makes those
 * fail.
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
  'read-only-failover',
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
  // On CI, exit as soon as the run is reported. Seen once on a fresh-clone CI run (Node 20): every
  // suite passed, then the process spun at ~80 % CPU for minutes inside Node's own exit teardown
  // (gdb: FreeEnvironment -> CleanupHandles -> uv_run, libuv with 0 active requests and 0 active
  // handles), so CI would have hung to its limit. Locally the natural exit stays, so a test that
  // leaves a handle open still shows up as "Jest did not exit".
  forceExit: process.env.CI === 'true',
};
