import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../../src/config/config';
import { BENCH_PEAK_RSS_MB, pm2Apps, SEMI_SPACE_MB } from '../../../src/config/pm2-apps';
import { killTimeoutMs, worstShutdownMs } from '../../../src/config/shutdown-budget';
import { loadConfig as loadDbAppConfig } from '../../../src/cli/embedded-db';

const URL_ = 'postgres://keel:pw@db.internal:5432/keel';
const ROOT = '/srv/keel';

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

test('defaults: one web app in cluster mode, kill_timeout 5 s past the drain deadline', () => {
  const { apps } = pm2Apps({ DATABASE_URL: URL_, WEB_CONCURRENCY: '3' }, ROOT);
  expect(apps.map((a) => a.name)).toEqual(['web']);
  const web = apps[0]!;
  expect(web.script).toBe(path.join(ROOT, 'dist', 'main.js'));
  expect(web.instances).toBe(3);
  expect(web.kill_timeout).toBe(loadConfig({}).shutdownTimeoutMs + 5000);
  expect(web.listen_timeout).toBe(loadConfig({}).readyWaitMs + 10000);
  expect(web.env).toEqual({
    NODE_ENV: 'production',
    WEB_CONCURRENCY: '3',
    PM2_KILL_TIMEOUT_MS: String(web.kill_timeout),
    KEEL_DB_PORT: String(loadDbAppConfig({}, ROOT).port),
  });
  // What the ecosystem passes down is accepted by the worker's own check.
  expect(() => loadConfig({ DATABASE_URL: URL_, ...web.env })).not.toThrow();
});

test('without DATABASE_URL the embedded db app starts first, on the port the workers use', () => {
  const { apps } = pm2Apps({ KEEL_DB_PORT: '6000', KEEL_DATA_DIR: 'pgdata' }, ROOT);
  expect(apps.map((a) => a.name)).toEqual(['db', 'web']);
  expect(apps[0]!.env).toEqual({ KEEL_DATA_DIR: path.join(ROOT, 'pgdata'), KEEL_DB_PORT: '6000' });
  const worker = loadConfig(apps[1]!.env);
  expect(worker.db.url).toContain(':6000/');
});

test.each([
  ['WEB_CONCURRENCY', 'abc'],
  ['SHUTDOWN_TIMEOUT_MS', '10s'],
  ['READY_WAIT_MS', '-1'],
  ['KEEL_DB_PORT', '70000'],
])('a bad %s=%s is the same error in the ecosystem as in a worker', (name, value) => {
  const env = { DATABASE_URL: URL_, [name]: value };
  const worker = errorOf(() => loadConfig(env));
  expect(errorOf(() => pm2Apps(env, ROOT))).toBe(worker);
  expect(worker).toContain(`${name}=${JSON.stringify(value)}`);
});

test('the embedded database reads its variables with the same specs and defaults', () => {
  const dflt = loadDbAppConfig({}, ROOT);
  expect(loadConfig({}).db.url).toBe(
    `postgres://keel:${dflt.password}@127.0.0.1:${dflt.port}/keel`,
  );
  expect(dflt.dataDir).toBe(path.join(ROOT, '.data', 'postgres'));
  const env = { KEEL_DB_PORT: 'x' };
  expect(errorOf(() => loadDbAppConfig(env, ROOT))).toBe(errorOf(() => loadConfig(env)));
  expect(errorOf(() => loadDbAppConfig({ LOG_LEVEL: 'loud' }, ROOT))).toBe(
    errorOf(() => loadConfig({ LOG_LEVEL: 'loud' })),
  );
});

test('a deployment never starts the embedded database, even without DATABASE_URL', () => {
  for (const env of [{ KEEL_REQUIRE_DATABASE_URL: '1' }, { RAILWAY_ENVIRONMENT_ID: 'env-1' }]) {
    expect(pm2Apps(env, ROOT).apps.map((a) => a.name)).toEqual(['web']);
  }
});

test('kill_timeout is the computed worst shutdown plus a margin, for any drain deadline', () => {
  for (const drain of [100, 10000, 30000]) {
    const web = pm2Apps({ DATABASE_URL: URL_, SHUTDOWN_TIMEOUT_MS: String(drain) }, ROOT).apps[0]!;
    expect(web.kill_timeout).toBe(killTimeoutMs(drain));
    expect(web.kill_timeout).toBeGreaterThan(worstShutdownMs(drain));
    // Pool close and log flush come on top of the deadline: at least 2 s more.
    expect(worstShutdownMs(drain)).toBeGreaterThanOrEqual(drain + 2000);
  }
});

test('max_memory_restart is 1.5x the peak RSS the benchmark measured, and that peak is current', () => {
  const latest = fs.readFileSync(path.join(__dirname, '../../../bench/LATEST.md'), 'utf8');
  // The pair rows: | pair | ops/s keel/base | p99 keel/base | keel peak RSS MB | targets |
  const header = latest.split('\n').find((l) => l.includes('| keel peak RSS MB |'))!;
  const column = header.split('|').findIndex((c) => c.trim() === 'keel peak RSS MB');
  const peaks = latest
    .split('\n')
    .filter((l) => /^\| \d+ \| [\d.]+x \|/.test(l))
    .map((l) => Number(l.split('|')[column]));
  expect(peaks.length).toBeGreaterThan(0);
  expect(BENCH_PEAK_RSS_MB).toBeGreaterThanOrEqual(Math.max(...peaks));
  const web = pm2Apps({ DATABASE_URL: URL_ }, ROOT).apps[0]!;
  const mb = Number(/^(\d+)M$/.exec(web.max_memory_restart!)![1]);
  expect(mb).toBeGreaterThanOrEqual(BENCH_PEAK_RSS_MB * 1.5);
  expect(mb).toBeLessThan(BENCH_PEAK_RSS_MB * 1.5 + 50);
});

test('the @pm2/io agent is injected unless a benchmark switches it off (KEEL_BENCH_ABLATE=pm2-io)', () => {
  const web = (env: Record<string, string>) =>
    pm2Apps({ DATABASE_URL: URL_, ...env }, ROOT).apps.find((a) => a.name === 'web');
  expect(web({})?.pmx).toBeUndefined();
  expect(web({ KEEL_BENCH_ABLATE: 'pm2-io' })?.pmx).toBe(false);
});

test("each worker's young generation is capped (--max-semi-space-size), unless NODE_OPTIONS sets it", () => {
  const web = (env: Record<string, string>) =>
    pm2Apps({ DATABASE_URL: URL_, ...env }, ROOT).apps.find((a) => a.name === 'web');
  expect(web({})?.node_args).toEqual([`--max-semi-space-size=${SEMI_SPACE_MB}`]);
  expect(web({ NODE_OPTIONS: '--max-semi-space-size=16' })?.node_args).toEqual([]);
  expect(web({ NODE_OPTIONS: '--enable-source-maps' })?.node_args).toEqual([
    `--max-semi-space-size=${SEMI_SPACE_MB}`,
  ]);
});
