/** `keel diagnose` through a real PgBouncer in transaction mode: detected, DB_PREPARE judged, admin figures read. */
import { byId, diagnoseJson } from '../support/diagnose';
import { needs } from '../support/prereqs';
import { startPgBouncer, type PgBouncer } from '../support/pgbouncer';
import { startTestPostgres, SUPERPASS, type TestPostgres } from '../support/postgres';

const test = needs('pgbouncer'); // skipped, with one line, where pgbouncer is missing

let pg: TestPostgres;
let bouncer: PgBouncer;
let env: Record<string, string>;

beforeAll(async () => {
  pg = await startTestPostgres({ localOnly: true });
  bouncer = await startPgBouncer({ targetPort: pg.port, poolSize: 10 });
  const direct = await pg.createDatabase();
  const db = new URL(direct).pathname.slice(1);
  env = {
    DATABASE_URL: bouncer.url(db),
    DATABASE_MIGRATION_URL: direct,
    DB_PREPARE: 'false',
    WEB_CONCURRENCY: '1',
    DB_POOL_MAX: '4',
  };
});
afterAll(async () => {
  await bouncer?.stop();
  await pg?.destroy();
});

test('PgBouncer is detected; with DB_PREPARE=false and a direct migration URL it passes', async () => {
  const { report, stdout, stderr } = await diagnoseJson(env, ['--round-trips', '10']);
  expect(byId(report, 'pooler.detected')).toMatchObject({ status: 'ok', value: 'pgbouncer' });
  // PgBouncer 1.18 in transaction mode does not keep prepared statements across server connections.
  expect(byId(report, 'pooler.prepared')).toMatchObject({ status: 'ok', value: 'lost' });
  expect(byId(report, 'pooler.prepared')!.data).toMatchObject({
    keepsPrepared: false,
    source: 'measured',
  });
  // Behind the pooler pg_stat_ssl would describe PgBouncer's session, so it is not reported.
  expect(byId(report, 'path.pg_stat_ssl')).toBeUndefined();
  expect(byId(report, 'budget.connections')).toMatchObject({ status: 'ok' });
  // keel.node speaks of the Node running the tests, not of the pooler.
  expect(report.checks.filter((c) => c.status === 'fail' && c.id !== 'keel.node')).toEqual([]);
  expect(stdout + stderr).not.toContain(SUPERPASS);
});

test('DB_PREPARE=true behind PgBouncer is a failure that says to set it false', async () => {
  const { code, report } = await diagnoseJson({ ...env, DB_PREPARE: 'true' }, [
    '--round-trips',
    '5',
  ]);
  expect(byId(report, 'pooler.prepared')).toMatchObject({
    status: 'fail',
    fix: 'set DB_PREPARE=false',
  });
  expect(code).toBe(2);
});

test('migrations through PgBouncer are a warning', async () => {
  const { report } = await diagnoseJson({ ...env, DATABASE_MIGRATION_URL: env.DATABASE_URL! }, [
    '--round-trips',
    '5',
  ]);
  expect(byId(report, 'pooler.detected')).toMatchObject({ status: 'warn', value: 'pgbouncer' });
  expect(byId(report, 'pooler.detected')!.fix).toMatch(/DATABASE_MIGRATION_URL/);
});

test('with admin credentials SHOW POOLS and SHOW CONFIG figures are reported and the budget uses max_client_conn', async () => {
  const { report, stdout } = await diagnoseJson(
    { ...env, DB_POOLER_ADMIN_URL: bouncer.adminUrl() },
    ['--round-trips', '5'],
  );
  expect(byId(report, 'pooler.config')).toMatchObject({ status: 'ok', value: 'transaction' });
  expect(byId(report, 'pooler.config')!.data).toMatchObject({
    default_pool_size: '10',
    max_client_conn: '500',
    pool_mode: 'transaction',
  });
  expect(byId(report, 'pooler.pools')!.summary).toMatch(/server connections \d+ active, \d+ idle/);
  // SHOW CONFIG has no max_prepared_statements before PgBouncer 1.21: statements are lost.
  expect(byId(report, 'pooler.prepared')!.data).toMatchObject({
    keepsPrepared: false,
    source: 'show config',
  });
  // 1 x 1 x 4 pools + 4 reload overlap + 1 probe = 9: migrations go to the direct URL.
  expect(byId(report, 'budget.connections')!.summary).toMatch(
    /^9 client connections at peak <= PgBouncer max_client_conn 500$/,
  );
  expect(stdout).not.toContain(SUPERPASS);
});
