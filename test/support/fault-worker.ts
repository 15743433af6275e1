/**
 * The fault tests' setup: one local Postgres cluster for the file (local, so a fault can stop
 * and restart it); each test opens its own database, fault proxy and worker into the fixture,
 * and what it opened is closed after that test. Call `useFaultFixture` at the top of the file.
 */
import { createFaultProxy, type FaultProxy } from './fault-proxy';
import { FAULT_ENV } from './faults';
import { seedAccounts } from './ledger';
import { startTestPostgres, type TestPostgres } from './postgres';
import { startTestWorker, type TestWorker } from './worker';

export interface FaultFixture {
  /** Set once `beforeAll` has run. */
  pg: TestPostgres;
  w: TestWorker | undefined;
  proxy: FaultProxy | undefined;
}

export function useFaultFixture(): FaultFixture {
  const fixture = { w: undefined, proxy: undefined } as FaultFixture;
  beforeAll(async () => {
    fixture.pg = await startTestPostgres({ localOnly: true });
  });
  afterEach(async () => {
    await fixture.w?.stop();
    fixture.w = undefined;
    await fixture.proxy?.close();
    fixture.proxy = undefined;
  });
  afterAll(async () => {
    await fixture.pg?.destroy();
  });
  return fixture;
}

/**
 * A new database (behind a new fault proxy when `viaProxy`), a worker on it with FAULT_ENV and
 * `env`, and 8 accounts of 10 000 each.
 */
export async function startFaultWorker(
  fixture: FaultFixture,
  env: Record<string, string>,
  viaProxy: boolean,
): Promise<{ url: string; ids: number[]; w: TestWorker }> {
  const url = await fixture.pg.createDatabase();
  let appUrl = url;
  if (viaProxy) {
    fixture.proxy = await createFaultProxy({
      targetHost: '127.0.0.1',
      targetPort: fixture.pg.port,
    });
    appUrl = fixture.proxy.url(url);
  }
  fixture.w = await startTestWorker(appUrl, { ...FAULT_ENV, ...env });
  const ids = await seedAccounts(fixture.w.base, 8, 10000);
  return { url, ids, w: fixture.w };
}
