'use strict';
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // Integration tests start real Postgres clusters and PM2 daemons: generous per-test limit.
  testTimeout: 120000,
};
