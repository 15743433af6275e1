/**
 * DATABASE_READ_URL (docs/replicas.md): the same URL rules as DATABASE_URL, with the standby
 * values of target_session_attrs allowed; one URL per host; the two bounds and their defaults.
 */
import { ConfigError, loadConfig } from '../../../src/config/config';

const PRIMARY = 'postgres://keel:pw@db:5432/keel';

function problem(env: Record<string, string>): string {
  try {
    loadConfig({ DATABASE_URL: PRIMARY, ...env });
  } catch (err) {
    if (err instanceof ConfigError) return `${err.exitCode} ${err.message}`;
    throw err;
  }
  return 'started';
}

test('unset: no standbys, every read on the primary', () => {
  expect(loadConfig({ DATABASE_URL: PRIMARY }).reads).toBeNull();
});

test('several hosts: one URL each, target_session_attrs dropped, other parameters kept', () => {
  const reads = loadConfig({
    DATABASE_URL: PRIMARY,
    DATABASE_READ_URL:
      'postgres://ro:p%40ss@r1:5433,[::1]:5434/keel?sslmode=require&target_session_attrs=standby',
  }).reads!;
  expect(reads.urls).toEqual([
    'postgres://ro:p%40ss@r1:5433/keel?sslmode=require',
    'postgres://ro:p%40ss@[::1]:5434/keel?sslmode=require',
  ]);
  expect(reads).toMatchObject({ waitMs: 200, maxLagMs: 3000 });
});

test.each(['standby', 'prefer-standby', 'read-only', 'any'])(
  'target_session_attrs=%s is allowed for the read URL only',
  (v) => {
    expect(problem({ DATABASE_READ_URL: `postgres://r1/keel?target_session_attrs=${v}` })).toBe(
      'started',
    );
    if (v !== 'any') {
      expect(problem({ DATABASE_URL: `postgres://db/keel?target_session_attrs=${v}` })).toMatch(
        /^78 .*DATABASE_URL/,
      );
    }
  },
);

test.each([
  ['postgres://r1/keel?target_session_attrs=read-write', /target_session_attrs=read-write/],
  ['mysql://r1/keel', /not a postgres:\/\/ URL/],
  ['postgres://u:100%@r1/keel', /percent-escape/],
])('a bad read URL stops the start naming DATABASE_READ_URL, never its value: %s', (url, why) => {
  const p = problem({ DATABASE_READ_URL: url });
  expect(p).toMatch(/^78 invalid configuration: DATABASE_READ_URL="<hidden>"/);
  expect(p).toMatch(why);
});

test('the bounds are configurable and range-checked', () => {
  const c = loadConfig({
    DATABASE_URL: PRIMARY,
    DATABASE_READ_URL: 'postgres://r1/keel',
    DB_READ_WAIT_MS: '0',
    DB_READ_MAX_LAG_MS: '10000',
  });
  expect(c.reads).toMatchObject({ waitMs: 0, maxLagMs: 10000 });
  expect(problem({ DB_READ_MAX_LAG_MS: '50' })).toMatch(/DB_READ_MAX_LAG_MS="50" is below 100/);
});
