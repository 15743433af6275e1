/**
 * The read side of a worker: one pool per standby of DATABASE_READ_URL, built by the same
 * factories as the primary's (createSql: recycling, keepalive, connect gate, stall watch;
 * createDb: breaker, admission, retries), the read set that checks them, and the router the
 * ledger uses as its `Db`. Without DATABASE_READ_URL the router reads the primary and nothing
 * else is opened.
 */
import type { DbConfig, ReadsConfig } from '../../config/config';
import { dbUrlParts } from '../../config/db-url';
import type { Logger } from '../../logger';
import { createDbStats, type DbStats } from '../../metrics/db-stats';
import type { ReadStats } from '../../metrics/read-stats';
import { createDb, type Db } from '../runner';
import { createSql, type SqlHandle } from '../sql';
import { createPositionReader } from './position';
import { createReadSet, newStandby, type ReadSet, type Standby } from './read-set';
import { createRouter } from './router';

export interface Reads {
  /** What the ledger runs its work on: writes on the primary, reads routed. */
  db: Db;
  set: ReadSet | null;
  /** Each standby pool's counters, for the metrics. */
  pools: ReadonlyArray<{ address: string; stats: DbStats }>;
  start(): void;
  end(timeoutS: number): Promise<void>;
}

// A standby gets this long (retries included) before its read goes to the primary instead: long
// enough for a connect and a query, short enough that a standby going down costs little.
const STANDBY_BUDGET_MS = 1000;
// A position query answers within a round trip; one that does not is treated as no answer.
const POSITION_TIMEOUT_MS = 1000;

export function createReads(deps: {
  db: DbConfig;
  reads: ReadsConfig | null;
  primary: Db;
  primaryHandle: SqlHandle;
  logger: Logger;
  stats: ReadStats;
  applicationName: string;
}): Reads {
  const { reads, primary, logger, stats } = deps;
  if (!reads) {
    const db = createRouter({
      primary,
      primaryPosition: null,
      set: null,
      waitMs: 0,
      stats,
      logger,
    });
    return { db, set: null, pools: [], start: () => undefined, end: async () => undefined };
  }
  const standbys: Standby[] = reads.urls.map((url) => {
    const { host, port } = dbUrlParts(url).hosts[0]!;
    const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const stats = createDbStats();
    const log = logger.child({ module: 'db.standby', standby: address });
    const handle = createSql({
      config: { ...deps.db, url },
      logger: log,
      stats,
      applicationName: `${deps.applicationName}:read`,
    });
    const db = createDb({
      handle,
      logger: log,
      stats,
      budgetMs: Math.min(deps.db.retryBudgetMs, STANDBY_BUDGET_MS),
      statementTimeoutMs: deps.db.statementTimeoutMs,
      idleInTransactionTimeoutMs: deps.db.idleInTransactionTimeoutMs,
      slots: deps.db.poolMax,
    });
    return newStandby({
      address,
      handle,
      db,
      stats,
      position: createPositionReader({ sql: handle.sql, timeoutMs: POSITION_TIMEOUT_MS }),
    });
  });
  const primaryPosition = createPositionReader({
    sql: deps.primaryHandle.sql,
    timeoutMs: POSITION_TIMEOUT_MS,
  });
  const set = createReadSet({
    standbys,
    primary: primaryPosition,
    maxLagMs: reads.maxLagMs,
    checkMs: reads.checkMs,
    logger: logger.child({ module: 'db.reads' }),
  });
  const db = createRouter({
    primary,
    primaryPosition,
    set,
    waitMs: reads.waitMs,
    stats,
    logger: logger.child({ module: 'db.reads' }),
  });
  return {
    db,
    set,
    pools: standbys.map((s) => ({ address: s.address, stats: s.stats })),
    start: () => set.start(),
    async end(timeoutS) {
      set.stop();
      for (const s of standbys) s.db.breaker.stop();
      await Promise.all(standbys.map((s) => s.handle.end(timeoutS)));
    },
  };
}
