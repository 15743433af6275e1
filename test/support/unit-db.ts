/**
 * The runner at its seam, for unit tests: `createDb` over a handle whose `sql` throws if touched
 * (the units of work under test fail or answer the way the driver would, without a database), a
 * clock that only moves when the test or the retry loop's waits move it, and a fixed `random`.
 */
import { Writable } from 'node:stream';
import { createDb, type Db } from '../../src/db/runner';
import type { SqlHandle } from '../../src/db/sql';
import { createLogger } from '../../src/logger';
import { createDbStats, type DbStats } from '../../src/metrics/db-stats';

export interface UnitDb {
  db: Db;
  stats: DbStats;
  /** Every wait the retry loop asked for, in ms. */
  waits: number[];
  clock: { t: number };
}

export function createUnitDb({
  budgetMs = 3000,
  slots = 4,
  random = (): number => 1,
}: { budgetMs?: number; slots?: number; random?: () => number } = {}): UnitDb {
  const clock = { t: 1_000_000 };
  const waits: number[] = [];
  const handle: SqlHandle = {
    sql: new Proxy({} as SqlHandle['sql'], {
      get: () => {
        throw new Error('the unit of work under test never touches sql');
      },
    }),
    pathStalled: () => false,
    asCancel: (send) => send(),
    onPathHealed: () => undefined,
    perTransactionTimeout: false,
    end: async () => undefined,
  };
  const stats = createDbStats();
  const db = createDb({
    handle,
    logger: createLogger({
      level: 'error',
      base: {},
      stream: new Writable({ write: (_c, _e, cb) => cb() }),
    }),
    stats,
    budgetMs,
    statementTimeoutMs: 0,
    slots,
    now: () => clock.t,
    random,
    sleep: async (ms) => {
      waits.push(ms);
      clock.t += ms;
    },
  });
  return { db, stats, waits, clock };
}
