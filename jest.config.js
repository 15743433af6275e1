'use strict';
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // Integration tests start real Postgres clusters and PM2 daemons: generous per-test limit.
  testTimeout: 120000,
  // On CI, exit as soon as the run is reported. Seen once on a fresh-clone CI run (Node 20): every
  // suite passed, then the process spun at ~80 % CPU for minutes inside Node's own exit teardown
  // (gdb: FreeEnvironment -> CleanupHandles -> uv_run, libuv with 0 active requests and 0 active
  // handles), so CI would have hung to its limit. Locally the natural exit stays, so a test that
  // leaves a handle open still shows up as "Jest did not exit".
  forceExit: process.env.CI === 'true',
};
