/**
 * `keel diagnose` against a real Postgres: a healthy direct path passes with the documented
 * JSON shape; each broken path gets its own failure line and exit 2; passwords never print.
 */
import fs from 'node:fs';
import { reportSchema } from '../../src/cli/diagnose/schema';
import { MIGRATIONS_DIR } from '../../src/db/migrate';
import { byId, diagnose, diagnoseJson } from '../support/diagnose';
import {
  freePort,
  psql,
  startTestPostgres,
  SUPERPASS,
  type TestPostgres,
} from '../support/postgres';

let pg: TestPostgres;
const BASE = { WEB_CONCURRENCY: '1', DB_POOL_MAX: '4' };
const SECRET = 'Wr0ng-pa55-xyz';

beforeAll(async () => {
  pg = await startTestPostgres({ localOnly: true });
});
afterAll(async () => {
  await pg?.destroy();
});

const withPassword = (url: string, password: string) => {
  const u = new URL(url);
  u.password = password;
  return u.toString();
};

test('a healthy direct path: every section reports, the JSON has its documented shape, exit 0', async () => {
  const run = await diagnoseJson({ ...BASE, DATABASE_URL: pg.url() }, ['--round-trips', '20']);
  const report = reportSchema.parse(JSON.parse(run.stdout));
  // Only a latency line may warn (a loaded CI box can stall a round trip past 50 ms), and
  // keel.node speaks of the Node running the tests (unit-tested on its own).
  const notOk = report.checks.filter((c) => c.status !== 'ok').map((c) => c.id);
  expect(notOk.filter((id) => !id.startsWith('latency.') && id !== 'keel.node')).toEqual([]);
  expect(run.code).toBe(report.exitCode);
  expect(report.exitCode).toBe(notOk.includes('keel.node') ? 2 : notOk.length ? 1 : 0);
  const ids = report.checks.map((c) => c.id);
  for (const id of [
    'path.dns',
    'path.tcp',
    'path.tls',
    'path.auth',
    'path.pg_stat_ssl',
    'latency.direct',
    'latency.pool',
    'server.version',
    'server.max_connections',
    'server.activity',
    'server.idle_session_timeout',
    'server.migrations',
    'pooler.detected',
    'budget.connections',
    'keel.driver_patch',
    'keel.timeouts',
    'keel.node',
    'keel.cpus',
  ])
    expect(ids).toContain(id);
  // A direct connection is not taken for a pooler.
  expect(byId(report, 'pooler.detected')).toMatchObject({ status: 'ok', value: 'none' });
  expect(byId(report, 'latency.direct')!.data).toMatchObject({ n: 20 });
  expect(byId(report, 'server.max_connections')!.value).toBe(200);
  expect(report.target.url).not.toContain(SUPERPASS);
  expect(run.stdout + run.stderr).not.toContain(SUPERPASS);
  expect(report.idleProbe).toBeNull();
});

test.each([
  ['wrong password', 'path.auth', 'wrong_password', /refused the password of user "postgres"/],
  ['unknown database', 'path.auth', 'unknown_database', /database "no_such_db" does not exist/],
])('%s: its own failure line, exit 2, no password printed', async (name, id, kind, summary) => {
  // The unknown database is reached with the right password: the name is what is wrong.
  const target = name === 'wrong password' ? withPassword(pg.url(), SECRET) : pg.url('no_such_db');
  const human = await diagnose({ ...BASE, DATABASE_URL: target });
  expect(human.code).toBe(2);
  expect(human.stdout).toMatch(
    new RegExp(`^fail +${id.replace('.', '\\.')} +${kind}: .*${summary.source}`, 'm'),
  );
  const json = await diagnoseJson({ ...BASE, DATABASE_URL: target });
  expect(json.code).toBe(2);
  expect(byId(json.report, id)).toMatchObject({ status: 'fail', value: kind });
  expect(byId(json.report, id)!.summary).toMatch(summary);
  for (const out of [human.stdout, human.stderr, json.stdout, json.stderr]) {
    expect(out).not.toContain(SECRET);
    expect(out).not.toContain(SUPERPASS);
  }
});

test('a refused port, an unknown host and TLS required but not offered: each named, exit 2', async () => {
  const port = await freePort();
  const cases: [string, string, string][] = [
    [`postgres://postgres:${SECRET}@127.0.0.1:${port}/postgres`, 'path.tcp', 'refused'],
    [
      `postgres://postgres:${SECRET}@no-such-host.invalid:5432/postgres`,
      'path.dns',
      'unknown_host',
    ],
    [`${withPassword(pg.url(), SECRET)}?sslmode=require`, 'path.tls', 'tls_required'],
  ];
  for (const [url, id, kind] of cases) {
    const { code, report, stdout, stderr } = await diagnoseJson({ ...BASE, DATABASE_URL: url });
    expect(byId(report, id)).toMatchObject({ status: 'fail', value: kind });
    expect(code).toBe(2);
    expect(stdout + stderr).not.toContain(SECRET);
    // Nothing past a broken path is measured, but Keel's own checks still run.
    expect(byId(report, 'latency.direct')).toBeUndefined();
    expect(byId(report, 'keel.driver_patch')).toBeDefined();
  }
});

test('an IPv6-only answer is named, and so is HOST listening on IPv4 only', async () => {
  // The test server listens on 127.0.0.1 only: ::1 answers DNS (a literal) but refuses TCP.
  const url = new URL(pg.url());
  url.hostname = '[::1]';
  const { report } = await diagnoseJson({ ...BASE, DATABASE_URL: url.toString() });
  expect(byId(report, 'path.dns')).toMatchObject({
    status: 'ok',
    data: { a: [], aaaa: ['::1'], ipv6Only: true },
  });
  expect(byId(report, 'path.listen')).toMatchObject({
    status: 'warn',
    value: '0.0.0.0',
    fix: 'set HOST=:: so services on the private network can reach this one',
  });
  expect(byId(report, 'path.tcp')).toMatchObject({ status: 'fail', value: 'refused' });
  const { report: dual } = await diagnoseJson({
    ...BASE,
    HOST: '::',
    DATABASE_URL: url.toString(),
  });
  expect(byId(dual, 'path.listen')).toBeUndefined();
});

test('a fleet that would exceed max_connections fails the budget with the arithmetic', async () => {
  const { code, report } = await diagnoseJson(
    { DATABASE_URL: pg.url(), KEEL_REPLICAS: '6', WEB_CONCURRENCY: '4', DB_POOL_MAX: '10' },
    ['--round-trips', '5'],
  );
  const budget = byId(report, 'budget.connections')!;
  expect(budget.status).toBe('fail');
  // 6 x 4 x 10 = 240 in the pools alone; a reload adds 2 workers per replica (4 > 2 instances).
  expect(budget.summary).toMatch(
    /^6 replicas x 4 workers x 10 = 240, \+ 120 reload overlap \+ 24 migrations \+ 24 probes = 408 at peak > \d+ allowed \(max_connections 200/,
  );
  expect(budget.value).toBe(408);
  expect(code).toBe(2);
});

test('a role that cannot create tables cannot run the pending migrations', async () => {
  const url = await pg.createDatabase();
  await psql(pg.url(), `create role diag_reader login password 'reader-pw-1'`);
  const u = new URL(url);
  u.username = 'diag_reader';
  u.password = 'reader-pw-1';
  const { report } = await diagnoseJson({ ...BASE, DATABASE_URL: u.toString() }, [
    '--round-trips',
    '5',
  ]);
  // A fresh database: every migration file is pending.
  const files = fs.readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).length;
  expect(byId(report, 'server.migrations')).toMatchObject({ status: 'fail', value: files });
  expect(byId(report, 'server.migrations')!.summary).toMatch(
    /cannot create tables in schema "public"/,
  );
});
