/** The shared server's handle, from globalSetup to globalTeardown (both run in Jest's parent). */
import type { TestPostgres } from './postgres';

const KEY = Symbol.for('keel.test.sharedServer');
type Holder = { [KEY]?: TestPostgres };

export function setShared(pg: TestPostgres): void {
  (globalThis as Holder)[KEY] = pg;
}

export function takeShared(): TestPostgres | undefined {
  const pg = (globalThis as Holder)[KEY];
  delete (globalThis as Holder)[KEY];
  return pg;
}
