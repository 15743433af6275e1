/**
 * target_session_attrs in a database URL (docs/failover.md): the values that keep Keel's writes
 * on a primary start; the ones that would send them to a standby, and unknown ones (which
 * postgres.js would throw on when the pool is made), stop the worker at start with exit 78.
 */
import { ConfigError, loadConfig } from '../../../src/config/config';
import { withHost } from '../../../src/config/db-url';

const HOSTS = 'postgres://keel:pw@db1:5432,db2:5433/keel';

function problem(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return `${err.exitCode} ${err.message}`;
    throw err;
  }
  return 'started';
}

test.each(['read-write', 'primary', 'any'])('target_session_attrs=%s is taken as given', (v) => {
  const url = `${HOSTS}?target_session_attrs=${v}`;
  expect(loadConfig({ DATABASE_URL: url }).db.url).toBe(url);
});

test('several hosts and no target_session_attrs: read-write, for the pool and migrations', () => {
  const c = loadConfig({ DATABASE_URL: HOSTS });
  expect(c.db.url).toBe(`${HOSTS}?target_session_attrs=read-write`);
  expect(c.db.migrationUrl).toBe(`${HOSTS}?target_session_attrs=read-write`);
});

test.each(['standby', 'prefer-standby', 'read-only'])(
  'target_session_attrs=%s is refused at start: it would send writes to a standby',
  (v) => {
    const out = problem({ DATABASE_URL: `${HOSTS}?target_session_attrs=${v}` });
    expect(out).toMatch(/^78 /);
    expect(out).toContain('DATABASE_URL');
    expect(out).toContain(`target_session_attrs=${v}, which would send Keel's writes to a standby`);
    expect(out).not.toContain('pw');
  },
);

test('an unknown target_session_attrs is refused at start, with the allowed values', () => {
  const out = problem({
    DATABASE_URL: HOSTS,
    DATABASE_MIGRATION_URL: `${HOSTS}?target_session_attrs=master`,
  });
  expect(out).toContain('DATABASE_MIGRATION_URL');
  expect(out).toContain('not one of read-write, primary, any');
});

test('withHost: one host of a list, with the rest of the URL as it was', () => {
  const url = `${HOSTS}?sslmode=require&target_session_attrs=read-write`;
  expect(withHost(url, 'db2', 5433)).toBe(
    'postgres://keel:pw@db2:5433/keel?sslmode=require&target_session_attrs=read-write',
  );
  expect(withHost('postgres://u@[::1]:1,h/d', '::1', 1)).toBe('postgres://u@[::1]:1/d');
});
