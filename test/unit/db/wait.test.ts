/**
 * A worker waiting for its database says what each host is: a standby is reported as a standby
 * (and a promote will end the wait), not as "not reachable".
 */
import { PassThrough } from 'node:stream';
import type { HostState } from '../../../src/db/hosts';
import { prepareDatabase } from '../../../src/db/wait';
import { createReadiness } from '../../../src/lifecycle/readiness';
import { createLogger } from '../../../src/logger';

function logs() {
  const stream = new PassThrough();
  const lines: Array<Record<string, unknown>> = [];
  stream.on('data', (d: Buffer) => {
    for (const l of d.toString().split('\n')) if (l) lines.push(JSON.parse(l));
  });
  return { log: createLogger({ level: 'debug', base: {}, stream }), lines };
}

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
