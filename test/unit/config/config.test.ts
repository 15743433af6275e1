import {
  ConfigError,
  deriveTimers,
  keepAliveHint,
  loadConfig,
  redactUrl,
} from '../../../src/config/config';

const URL_ = 'postgres://keel:s3cret-pw@db.internal:5432/keel';

function fails(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  test('defaults', () => {
    const c = loadConfig({ DATABASE_URL: URL_, WEB_CONCURRENCY: '2' });
    expect(c.port).toBe(3000);
    expect(c.instances).toBe(2);
    expect(c.db.poolMax).toBe(10);
    expect(c.db.keepAliveS).toBe(20);
    expect(c.db.connectTimeoutS).toBe(10);
    expect(c.db.idleCutoffS).toBe(300);
    expect(c.db.prepare).toBe(true);
    expect(c.db.ssl).toBe(false);
    expect(c.db.embedded).toBe(false);
    expect(c.db.migrationUrl).toBe(URL_);
    expect(c.bodyLimitBytes).toBe(100 * 1024);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.db)).toBe(true);
  });

  test('no DATABASE_URL means the embedded database, with its port and password', () => {
    const c = loadConfig({});
    expect(c.db.embedded).toBe(true);
    expect(c.db.url).toMatch(/^postgres:\/\/keel:[^@]+@127\.0\.0\.1:5433\/keel$/);
    const custom = loadConfig({ KEEL_DB_PORT: '6543', KEEL_DB_PASSWORD: 'p@ss word' });
    expect(custom.db.url).toBe('postgres://keel:p%40ss%20word@127.0.0.1:6543/keel');
  });

  test('derived idle timeout and lifetime stay below the cutoff, with jitter ranges', () => {
    const c = loadConfig({ DATABASE_URL: URL_ });
    expect(c.db.idleTimeoutS).toEqual([150, 210]);
    expect(c.db.maxLifetimeS).toEqual([240, 285]);
    expect(c.db.maxLifetimeS[1]).toBeLessThan(300);
    expect(c.db.maxLifetimeS[0]).toBeLessThan(c.db.maxLifetimeS[1]);
    const scaled = loadConfig({ DATABASE_URL: URL_, DB_IDLE_CUTOFF_S: '2' });
    expect(scaled.db.idleTimeoutS![1]).toBeLessThan(2);
    expect(scaled.db.maxLifetimeS[1]).toBeLessThan(2);
    expect(deriveTimers(7200, undefined, undefined).life).toEqual([1800, 3600]);
    expect(deriveTimers(300, 0, undefined).idle).toBeNull();
    expect(deriveTimers(300, 100, 200)).toEqual({ idle: [100, 100], life: [200, 200] });
  });

  test('explicit timers at or above the cutoff are errors', () => {
    const e = fails({ DATABASE_URL: URL_, DB_IDLE_TIMEOUT_S: '300' });
    expect(e.variable).toBe('DB_IDLE_TIMEOUT_S');
    expect(e.message).toMatch(
      /DB_IDLE_TIMEOUT_S="300" is not below DB_IDLE_CUTOFF_S=300.*allowed: an integer from 1 to 299/,
    );
    expect(fails({ DATABASE_URL: URL_, DB_MAX_LIFETIME_S: '301' }).variable).toBe(
      'DB_MAX_LIFETIME_S',
    );
  });

  test('DB_MAX_CONNECTIONS divides across instances', () => {
    expect(
      loadConfig({ DATABASE_URL: URL_, WEB_CONCURRENCY: '4', DB_MAX_CONNECTIONS: '22' }).db.poolMax,
    ).toBe(5);
    const e = fails({ DATABASE_URL: URL_, WEB_CONCURRENCY: '4', DB_MAX_CONNECTIONS: '3' });
    expect(e.variable).toBe('DB_MAX_CONNECTIONS');
    expect(e.message).toMatch(/WEB_CONCURRENCY=4/);
  });

  test('migration URL: DATABASE_MIGRATION_URL, else DATABASE_UNPOOLED_URL, else DATABASE_URL', () => {
    const direct = 'postgres://keel:pw@direct:5432/keel';
    expect(loadConfig({ DATABASE_URL: URL_, DATABASE_UNPOOLED_URL: direct }).db.migrationUrl).toBe(
      direct,
    );
    expect(
      loadConfig({
        DATABASE_URL: URL_,
        DATABASE_UNPOOLED_URL: URL_,
        DATABASE_MIGRATION_URL: direct,
      }).db.migrationUrl,
    ).toBe(direct);
  });

  test('ssl from sslmode, overridable', () => {
    expect(loadConfig({ DATABASE_URL: `${URL_}?sslmode=require` }).db.ssl).toBe('require');
    expect(loadConfig({ DATABASE_URL: `${URL_}?sslmode=require`, DB_SSL: 'false' }).db.ssl).toBe(
      false,
    );
    expect(loadConfig({ DATABASE_URL: URL_, DB_SSL: 'verify-full' }).db.ssl).toBe('verify-full');
  });

  test.each([
    ['PORT', 'abc', /is not an integer/],
    ['PORT', '70000', /is above 65535/],
    ['DB_POOL_MAX', '0', /is below 1/],
    ['DB_PREPARE', 'maybe', /is not a boolean.*true or false/],
    ['LOG_LEVEL', 'loud', /allowed: error, warn, info, http, debug/],
    ['BODY_LIMIT', 'lots', /is not a size/],
    ['DB_SSL', 'sometimes', /allowed: false, disable, require, prefer, verify-full/],
  ])(
    '%s=%s is rejected with the variable, the problem and what is allowed',
    (name, value, pattern) => {
      const e = fails({ DATABASE_URL: URL_, [name]: value });
      expect(e.variable).toBe(name);
      expect(e.exitCode).toBe(78);
      expect(e.message).toContain(`${name}="${value}"`);
      expect(e.message).toMatch(pattern);
      expect(e.message).toContain('allowed:');
    },
  );

  test('a bad database URL is named but never printed', () => {
    const e = fails({ DATABASE_URL: 'mysql://root:hunter2@x/db' });
    expect(e.variable).toBe('DATABASE_URL');
    expect(e.message).not.toContain('hunter2');
    expect(e.message).toMatch(/not a postgres:\/\/ URL/);
  });

  test('SHUTDOWN_TIMEOUT_MS must be below the kill timeout PM2 passes down', () => {
    expect(
      fails({ DATABASE_URL: URL_, SHUTDOWN_TIMEOUT_MS: '20000', PM2_KILL_TIMEOUT_MS: '15000' })
        .variable,
    ).toBe('SHUTDOWN_TIMEOUT_MS');
  });

  test('BODY_LIMIT units', () => {
    expect(loadConfig({ DATABASE_URL: URL_, BODY_LIMIT: '1mb' }).bodyLimitBytes).toBe(1048576);
    expect(loadConfig({ DATABASE_URL: URL_, BODY_LIMIT: '2048' }).bodyLimitBytes).toBe(2048);
  });
});

test('redactUrl hides the password', () => {
  expect(redactUrl(URL_)).toBe('postgres://keel:***@db.internal:5432/keel');
});

test('the advertised keep-alive idle time never passes the drain deadline', () => {
  expect(keepAliveHint(65000, 10000)).toBe(10);
  expect(keepAliveHint(65000, 3500)).toBe(3);
  expect(keepAliveHint(5000, 10000)).toBe(5);
  expect(keepAliveHint(65000, 100)).toBe(1);
});

describe('issue 10: safe configuration', () => {
  test('server limits have defaults; headers may not outlast the whole request', () => {
    const c = loadConfig({ DATABASE_URL: URL_ });
    expect(c.headersTimeoutMs).toBe(10000);
    expect(c.requestReceiveTimeoutMs).toBe(30000);
    expect(c.maxConnections).toBe(1000);
    const e = fails({
      DATABASE_URL: URL_,
      HEADERS_TIMEOUT_MS: '5000',
      REQUEST_RECEIVE_TIMEOUT_MS: '1000',
    });
    expect(e.variable).toBe('HEADERS_TIMEOUT_MS');
  });

  test('a bad percent-escape in DATABASE_URL is a config error that does not print it', () => {
    const e = fails({ DATABASE_URL: 'postgres://keel:hunter2%zz@db/keel' });
    expect(e.variable).toBe('DATABASE_URL');
    expect(e.message).toMatch(/percent-escape/);
    expect(e.message).not.toContain('hunter2');
  });

  test('METRICS_TOKEN is never echoed', () => {
    const e = fails({ DATABASE_URL: URL_, METRICS_TOKEN: 't0ken-'.repeat(100) });
    expect(e.variable).toBe('METRICS_TOKEN');
    expect(e.message).not.toContain('t0ken');
  });

  test('a missing DATABASE_URL in a deployment is an error that says what to set', () => {
    const envs: Array<Record<string, string>> = [
      { RAILWAY_ENVIRONMENT_ID: 'abc' },
      { KEEL_REQUIRE_DATABASE_URL: '1' },
    ];
    for (const env of envs) {
      const e = fails(env);
      expect(e.variable).toBe('DATABASE_URL');
      expect(e.message).toMatch(/set DATABASE_URL=/);
    }
    expect(loadConfig({ RAILWAY_ENVIRONMENT_ID: 'abc', DATABASE_URL: URL_ }).db.embedded).toBe(
      false,
    );
  });

  test('a multi-host URL gets target_session_attrs=read-write unless it says otherwise', () => {
    const multi = 'postgres://keel:pw@db1:5432,db2:5433/keel?sslmode=require';
    const c = loadConfig({ DATABASE_URL: multi });
    expect(c.db.url).toBe(`${multi}&target_session_attrs=read-write`);
    expect(c.db.ssl).toBe('require');
    expect(redactUrl(c.db.url)).toBe(
      'postgres://keel:***@db1:5432,db2:5433/keel?sslmode=require&target_session_attrs=read-write',
    );
    const given = 'postgres://keel:pw@db1,db2/keel?target_session_attrs=any';
    expect(loadConfig({ DATABASE_URL: given }).db.url).toBe(given);
    expect(loadConfig({ DATABASE_URL: URL_ }).db.url).toBe(URL_);
  });
});

test('KEEL_BENCH_ABLATE: off by default; a list of known layers; an unknown one fails with the list', () => {
  expect(loadConfig({ DATABASE_URL: URL_ }).benchAblate).toEqual([]);
  expect(
    loadConfig({ DATABASE_URL: URL_, KEEL_BENCH_ABLATE: 'access-log, Deadline' }).benchAblate,
  ).toEqual(['access-log', 'deadline']);
  const err = fails({ DATABASE_URL: URL_, KEEL_BENCH_ABLATE: 'access-log,tls' });
  expect(err.variable).toBe('KEEL_BENCH_ABLATE');
  expect(err.message).toContain('stall-watch');
});
