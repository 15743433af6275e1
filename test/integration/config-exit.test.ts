/** A bad configuration stops the real entry point with one clear line and exit code 78. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ensureBuilt, ROOT } from '../support/pm2';

function start(env: Record<string, string>) {
  ensureBuilt();
  return spawnSync(process.execPath, [path.join(ROOT, 'dist', 'main.js')], {
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
    timeout: 20000,
  });
}

test.each([
  [
    { DB_POOL_MAX: '0' },
    /^keel: invalid configuration: DB_POOL_MAX="0" is below 1; allowed: an integer from 1 to 1000\n$/,
  ],
  [{ PORT: 'http' }, /PORT="http" is not an integer; allowed: an integer from 0 to 65535/],
  [{ DB_IDLE_TIMEOUT_S: '400' }, /DB_IDLE_TIMEOUT_S="400" is not below DB_IDLE_CUTOFF_S=300/],
])('%j → exit 78', (env, message) => {
  const r = start({ DATABASE_URL: 'postgres://keel:pa55word@127.0.0.1:1/keel', ...env });
  expect(r.status).toBe(78);
  expect(r.stderr).toMatch(message);
  expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  expect(r.stdout + r.stderr).not.toContain('pa55word');
});

test('a malformed DATABASE_URL is named, not printed', () => {
  const r = start({ DATABASE_URL: 'postgres//user:hunter2@host' });
  expect(r.status).toBe(78);
  expect(r.stderr).toMatch(/DATABASE_URL="<hidden>" is not a postgres:\/\/ URL/);
  expect(r.stderr).not.toContain('hunter2');
});

test.each([
  [
    'a bad percent-escape in DATABASE_URL',
    { DATABASE_URL: 'postgres://keel:hunter2%zz@127.0.0.1:1/keel' },
    /^keel: invalid configuration: DATABASE_URL="<hidden>" has a bad percent-escape/,
  ],
  [
    'a METRICS_TOKEN that is too long',
    {
      DATABASE_URL: 'postgres://keel:pw@127.0.0.1:1/keel',
      METRICS_TOKEN: `hunter2${'x'.repeat(600)}`,
    },
    /^keel: invalid configuration: METRICS_TOKEN="<hidden>" is longer than 512/,
  ],
  [
    'no DATABASE_URL where one is required',
    { KEEL_REQUIRE_DATABASE_URL: '1' },
    /^keel: invalid configuration: DATABASE_URL="" is not set, .*set DATABASE_URL=/,
  ],
  [
    'no DATABASE_URL on Railway',
    { RAILWAY_ENVIRONMENT_ID: 'env-123' },
    /^keel: invalid configuration: DATABASE_URL="" is not set, and RAILWAY_ENVIRONMENT_ID is set/,
  ],
])('%s: exit 78 with one line, no secret', (_what, env, message) => {
  const r = start(env);
  expect(r.status).toBe(78);
  expect(r.stderr).toMatch(message);
  expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  expect(r.stdout + r.stderr).not.toContain('hunter2');
});
