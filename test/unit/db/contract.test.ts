/**
 * Contract steps (docs/migrations.md, expand / contract): the file marker, what a worker at boot
 * leaves pending, and the migrate command's gate over the PM2 fleet it is given.
 */
import { pm2ContractGate } from '../../../src/cli/pm2-fleet';
import { ContractRefused, pendingToApply, type FleetWorker } from '../../../src/db/contract';
import { MigrationFileError, parseMigration } from '../../../src/db/migration-file';
import { captureLogs } from '../../support/log-lines';

const EXPAND = '0006_display_name.sql';
const CONTRACT_TEXT = `-- keel:contract ${EXPAND}\nalter table accounts drop column name;\n`;

test('a contract file names the expand file it completes', () => {
  expect(parseMigration('0007_drop.sql', CONTRACT_TEXT)).toMatchObject({
    transaction: true,
    contract: EXPAND,
  });
  expect(parseMigration('0006.sql', 'select 1;\n')).not.toHaveProperty('contract');
});

test('a contract marker without an earlier file is refused, naming the form', () => {
  for (const marker of ['-- keel:contract', '-- keel:contract 0009_later.sql']) {
    expect(() => parseMigration('0007_drop.sql', `${marker}\nselect 1;\n`)).toThrow(
      MigrationFileError,
    );
    expect(() => parseMigration('0007_drop.sql', `${marker}\nselect 1;\n`)).toThrow(
      '"-- keel:contract 0006_add_x.sql"',
    );
  }
});

const files = (names: string[]) =>
  new Map(
    names.map((n) => [n, parseMigration(n, n.includes('drop') ? CONTRACT_TEXT : 'select 1;\n')]),
  );

test('a worker at boot applies the files before a contract step and leaves it pending', async () => {
  const { log, lines } = captureLogs();
  const pending = [EXPAND, '0007_drop.sql', '0008_more.sql'];
  const known = ['0005.sql', ...pending];
  expect(await pendingToApply(pending, files(pending), known, undefined, log)).toBe(1);
  expect(lines).toContainEqual(
    expect.objectContaining({ msg: 'contract step left for the migrate command' }),
  );
});

test('a contract step whose expand file is not in the folder is refused', async () => {
  const { log } = captureLogs();
  const pending = ['0007_drop.sql'];
  await expect(pendingToApply(pending, files(pending), pending, undefined, log)).rejects.toThrow(
    `its contract marker names ${EXPAND}, which is not in the folder`,
  );
});

const worker = (pid: number, schema: string | null): FleetWorker => ({
  pid,
  id: pid,
  status: 'online',
  schema,
});

function gate(fleets: Array<FleetWorker[] | null>, confirm: string | null = null) {
  const { log, lines } = captureLogs();
  let asked = 0;
  const g = pm2ContractGate({
    home: '/nowhere',
    confirm,
    log,
    list: () => Promise.resolve(fleets[Math.min(asked++, fleets.length - 1)] ?? null),
    sleep: () => Promise.resolve(),
  });
  const file = { ...parseMigration('0007_drop.sql', CONTRACT_TEXT), contract: EXPAND };
  return { run: () => g(file), lines, asked: () => asked };
}

test('the gate refuses while a worker of a release without the expand file is online', async () => {
  const g = gate([[worker(1, EXPAND), worker(2, '0005.sql')]], '0007_drop.sql');
  const err = await g.run().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ContractRefused);
  expect((err as ContractRefused).workers.map((w) => w.pid)).toEqual([2]);
  expect((err as Error).message).toContain('pid 2 (pm_id 2, online, schema 0005.sql)');
});

test('the gate lets the step through once every worker knows the expand file', async () => {
  const g = gate([[worker(1, EXPAND), worker(2, '0007_drop.sql')]]);
  await expect(g.run()).resolves.toBeUndefined();
});

test('a worker that does not say its schema yet is asked again, a bounded number of times', async () => {
  const later = gate([[worker(1, null)], [worker(1, null)], [worker(1, EXPAND)]]);
  await expect(later.run()).resolves.toBeUndefined();
  expect(later.asked()).toBe(3);
  const never = gate([[worker(1, null)]]);
  await expect(never.run()).rejects.toThrow('do not say their schema');
  expect(never.asked()).toBe(6);
});

test('without a PM2 daemon the step needs KEEL_CONTRACT_CONFIRM naming it', async () => {
  await expect(gate([null]).run()).rejects.toThrow('KEEL_CONTRACT_CONFIRM=0007_drop.sql');
  await expect(gate([null], 'another.sql').run()).rejects.toThrow(ContractRefused);
  const confirmed = gate([null], '0007_drop.sql');
  await expect(confirmed.run()).resolves.toBeUndefined();
  expect(confirmed.lines).toContainEqual(
    expect.objectContaining({ level: 'warn', migration: '0007_drop.sql' }),
  );
});
