/**
 * A worker waiting for its database says what each host is: a standby is reported as a standby
 * (and a promote will end the wait), not as "not reachable".
 */
import type { HostState } from '../../../src/db/hosts';
import { prepareDatabase } from '../../../src/db/wait';
import { createReadiness } from '../../../src/lifecycle/readiness';
import { captureLogs as logs } from '../../support/log-lines';

test('no primary yet: each host is logged as what it is, then the promote ends the wait', async () => {
  const { log, lines } = logs();
  const readiness = createReadiness();
  let promoted = false;
  let asked = 0;
  const hosts = async (): Promise<HostState[]> => {
    asked += 1;
    return [
      { address: 'db1:5432', role: promoted ? 'primary' : 'standby' },
      { address: 'db2:5432', role: 'unreachable', error: 'ECONNREFUSED' },
    ];
  };
  let pings = 0;
  await prepareDatabase({
    ping: async () => {
      pings += 1;
      if (pings === 2) promoted = true;
      return pings > 2;
    },
    migrate: async () => undefined,
    readiness,
    log,
    stopped: () => false,
    hosts,
  });
  await new Promise((r) => setImmediate(r));
  expect(readiness.migrated()).toBe(true);
  expect(asked).toBe(1); // the first miss only: bounded, not once per attempt
  const standby = lines.find((l) => l.host === 'db1:5432');
  expect(standby).toMatchObject({
    level: 'warn',
    msg: 'database host is a standby, waiting for a primary',
    role: 'standby',
  });
  expect(lines.find((l) => l.host === 'db2:5432')).toMatchObject({
    msg: 'database host not reachable',
    code: 'ECONNREFUSED',
  });
  expect(lines.some((l) => l.host === 'db1:5432' && l.role === 'unreachable')).toBe(false);
});

test('a migration out of its lock-wait budget is tried again, never a crash', async () => {
  const { log, lines } = logs();
  const readiness = createReadiness();
  let tries = 0;
  await prepareDatabase({
    ping: async () => true,
    migrate: async () => {
      tries += 1;
      if (tries === 1) {
        throw Object.assign(new Error('0006.sql waited 1.0 s for locks'), {
          code: 'KEEL_MIGRATION_LOCK_BUDGET',
        });
      }
    },
    readiness,
    log,
    stopped: () => false,
  });
  await new Promise((r) => setImmediate(r));
  expect(tries).toBe(2);
  expect(readiness.migrated()).toBe(true);
  expect(lines).toContainEqual(
    expect.objectContaining({
      level: 'warn',
      msg: 'schema not current: a migration waits for locks, not ready yet',
      error: '0006.sql waited 1.0 s for locks',
    }),
  );
});
