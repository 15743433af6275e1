/**
 * `keel diagnose` against a real primary and a real streaming standby (test/support/replication),
 * the URL listing the standby first: one line per host with its role and what it says about
 * replication, a warning for the standby listed first and one for asynchronous replication; with
 * synchronous replication turned on, that warning goes and the mode line says so. When only the
 * standby answers, diagnose says no host is a primary (not "not reachable").
 */
import { reportSchema } from '../../src/cli/diagnose/schema';
import { diagnose, diagnoseJson } from '../support/diagnose';
import { psql } from '../support/postgres';
import { startReplicationPair, type ReplicationPair } from '../support/replication';
import { untilValue } from '../support/wait';

const DB = 'keel_diag_ha';
const BASE = { WEB_CONCURRENCY: '1', DB_POOL_MAX: '2' };
let pair: ReplicationPair;

beforeAll(async () => {
  pair = await startReplicationPair({ database: DB });
});
afterAll(async () => {
  await pair?.destroy();
});

const addr = (port: number) => `127.0.0.1:${port}`;
function standbyFirstUrl(): string {
  const u = new URL(pair.primary.url(DB));
  return `postgres://${u.username}:${u.password}@${addr(pair.standby.port)},${addr(pair.primary.port)}/${DB}`;
}
const lines = (stdout: string, id: string) =>
  stdout.split('\n').filter((l) => new RegExp(`^\\w+ +${id.replace('.', '\\.')} `).test(l));

test('standby first, asynchronous: a line per host with its role, both warnings, exit 1', async () => {
  const run = await diagnoseJson({ ...BASE, DATABASE_URL: standbyFirstUrl() }, [
    '--round-trips',
    '5',
  ]);
  const report = reportSchema.parse(JSON.parse(run.stdout));
  const hosts = report.checks.filter((c) => c.id === 'replication.host');
  expect(hosts.map((c) => [c.status, c.value, c.data.host])).toEqual([
    ['ok', 'standby', addr(pair.standby.port)],
    ['ok', 'primary', addr(pair.primary.port)],
  ]);
  // The standby reports what it received and replayed; the primary the standby it streams to.
  expect(hosts[0]!.data.replication).toMatchObject({ kind: 'standby', receiver: 'streaming' });
  expect(hosts[0]!.summary).toMatch(/WAL receiver streaming; replayed to [0-9A-F]+\/[0-9A-F]+ of /);
  expect(hosts[1]!.data.replication).toMatchObject({
    kind: 'primary',
    synchronousStandbyNames: '',
    standbys: [{ state: 'streaming', syncState: 'async' }],
  });
  expect(hosts[1]!.summary).toMatch(/streaming, async, replay lag /);

  expect(report.checks.find((c) => c.id === 'replication.first_host')).toMatchObject({
    status: 'warn',
    value: addr(pair.standby.port),
  });
  const mode = report.checks.find((c) => c.id === 'replication.mode');
  expect(mode).toMatchObject({ status: 'warn', value: 'async' });
  expect(mode!.summary).toMatch(/synchronous_standby_names is empty/);
  // The login went through to the primary behind the standby.
  expect(report.checks.find((c) => c.id === 'path.auth')).toMatchObject({ status: 'ok' });
  expect(report.exitCode).toBeGreaterThanOrEqual(1);
  expect(run.code).toBe(report.exitCode);

  // The human report: the same lines, no password.
  const human = await diagnose({ ...BASE, DATABASE_URL: standbyFirstUrl() }, [
    '--round-trips',
    '5',
  ]);
  expect(lines(human.stdout, 'replication.host')).toHaveLength(2);
  expect(lines(human.stdout, 'replication.host')[0]).toMatch(
    new RegExp(
      `^ok +replication\\.host +standby: 127\\.0\\.0\\.1:${pair.standby.port}: WAL receiver streaming; `,
    ),
  );
  expect(lines(human.stdout, 'replication.first_host')[0]).toMatch(/^warn /);
  expect(lines(human.stdout, 'replication.mode')[0]).toMatch(/^warn +replication\.mode +async: /);
  expect(human.stdout).not.toContain(new URL(pair.primary.url()).password);
});

test('synchronous replication: no asynchronous warning, the mode line says sync', async () => {
  await psql(pair.primary.url(), `alter system set synchronous_standby_names = '*'`);
  await psql(pair.primary.url(), `alter system set synchronous_commit = 'on'`);
  await psql(pair.primary.url(), 'select pg_reload_conf()');
  await untilValue(
    () =>
      psql<{ s: string }>(pair.primary.url(), 'select sync_state as s from pg_stat_replication'),
    (rows) => rows.some((r) => r.s === 'sync'),
    30000,
    'the standby synchronous',
  );
  const { report } = await diagnoseJson({ ...BASE, DATABASE_URL: standbyFirstUrl() }, [
    '--round-trips',
    '5',
  ]);
  expect(report.checks.find((c) => c.id === 'replication.mode')).toMatchObject({
    status: 'ok',
    value: 'sync',
  });
  expect(
    report.checks.filter((c) => c.id === 'replication.host').map((c) => c.data.replication),
  ).toMatchObject([{ kind: 'standby' }, { kind: 'primary', standbys: [{ syncState: 'sync' }] }]);
  // Still listed first, still a standby.
  expect(report.checks.find((c) => c.id === 'replication.first_host')?.status).toBe('warn');
});

test('only the standby answers: no host is a primary, a failure, not "unreachable"', async () => {
  const u = new URL(pair.standby.url(DB));
  const { report } = await diagnoseJson({ ...BASE, DATABASE_URL: u.toString() }, [
    '--round-trips',
    '5',
  ]);
  expect(
    report.checks.filter((c) => c.id === 'replication.host').map((c) => [c.status, c.value]),
  ).toEqual([['ok', 'standby']]);
  expect(report.checks.find((c) => c.id === 'replication.primary')).toMatchObject({
    status: 'fail',
    value: 'none',
  });
  expect(report.exitCode).toBe(2);
});
