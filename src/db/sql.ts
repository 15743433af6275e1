/** The worker's one postgres.js client, tuned to outlive a platform proxy's idle cutoff. */
import type net from 'node:net';
import postgres from 'postgres';
import type { DbConfig } from '../config/config';
import { dbUrlParts } from '../config/db-url';
import type { Logger } from '../logger';
import type { DbStats } from '../metrics/db-stats';
import { createSocketFactory } from './socket';

export type Sql = postgres.Sql;

export interface CreateSqlDeps {
  config: DbConfig;
  logger: Logger;
  stats: DbStats;
  /** Shown in pg_stat_activity: keel:<instance>:<pid>. */
  applicationName: string;
  random?: () => number;
  /** Benchmarks only (KEEL_BENCH_ABLATE): the driver's own sockets, or no stall watchdog. */
  ablate?: { sockets?: boolean; stallWatch?: boolean };
}

export interface SqlHandle {
  sql: Sql;
  /** The path to the database is known stalled (see ./path-watch). */
  pathStalled(): boolean;
  /** Calls `listener` each time a stalled path answers again. */
  onPathHealed(listener: () => void): void;
  /** Runs `send` (a query's `cancel()`) so that its socket takes no queue: see ./socket. */
  asCancel<T>(send: () => T): T;
  /** Whether the statement timeout must be set per transaction (PgBouncer transaction mode). */
  perTransactionTimeout: boolean;
  end(timeoutS: number): Promise<void>;
}

/**
 * postgres.js's own Options, plus what its code reads and its types/index.d.ts leaves out: a
 * `socket` factory (connection.js `createSocket`), `idle_timeout` / `max_lifetime` given as
 * functions, which connection.js `timer()` calls once per connection, and `max_pipeline`
 * (index.js defaults; connection.js `execute`).
 */
type DriverOptions = Omit<
  postgres.Options<Record<string, never>>,
  'idle_timeout' | 'max_lifetime'
> & {
  idle_timeout?: number | (() => number);
  max_lifetime?: number | (() => number) | null;
  socket?: () => Promise<net.Socket>;
  max_pipeline?: number;
};

/** A value rolled per connection in [lo, hi], as postgres.js does for its default lifetime. */
function roll(range: readonly [number, number], random: () => number): () => number {
  return () => range[0] + random() * (range[1] - range[0]);
}

export function createSql(deps: CreateSqlDeps): SqlHandle {
  const { config, logger, stats } = deps;
  const random = deps.random ?? Math.random;
  const sockets = createSocketFactory({
    // Several hosts (a failover pair): postgres.js picks the primary by target_session_attrs.
    hosts: dbUrlParts(config.url).hosts,
    stats,
    poolMax: config.poolMax,
    random,
    logger: logger.child({ module: 'db.socket' }),
    // A healthy query answers within the statement timeout; one second on top covers the round trip.
    stallMs: (config.statementTimeoutMs || 30000) + 1000,
    idleTimeoutMinS: config.idleTimeoutS?.[0] ?? null,
    maxLifetimeMinS: config.maxLifetimeS[0],
    stallWatch: !deps.ablate?.stallWatch,
  });
  // PgBouncer (transaction mode) rejects statement_timeout as a startup parameter (08P01).
  const perTransactionTimeout = !config.prepare;
  const options: DriverOptions = {
    max: config.poolMax,
    // Idle connections close at 50-70 % of the proxy's idle cutoff, rolled per connection.
    idle_timeout: config.idleTimeoutS ? roll(config.idleTimeoutS, random) : 0,
    // Every connection is replaced before the cutoff too, at a per-connection jittered age.
    max_lifetime: roll(config.maxLifetimeS, random),
    // Keepalive probes every 20 s find a dead idle socket long before a 300 s cutoff matters.
    keep_alive: config.keepAliveS,
    // A connect that takes longer than this is hopeless; the retry loop tries a fresh one.
    connect_timeout: config.connectTimeoutS,
    // The socket factory's connect gate backs off after failed attempts (50 ms doubling, capped
    // at 500 ms, jittered), for every attempt the driver makes, its initial connect's included:
    // a second schedule here would only slow the recovery.
    backoff: () => 0,
    // No query is written behind one that has no answer yet (with Keel's driver patch, 1 means
    // that): it waits in the pool's queue for a free connection instead. Behind a path that lost
    // the first query's bytes, the server would answer the second and the driver hand that answer
    // to the first, leaving the second waiting until its deadline (seen: 503s 1-2 s after a
    // blackhole healed). Keel's admission gate already holds units to the pool's size, so the
    // driver only pipelined behind abandoned attempts.
    max_pipeline: 1,
    prepare: config.prepare,
    ssl: config.ssl,
    ...(deps.ablate?.sockets ? {} : { socket: sockets }),
    onnotice: (notice) =>
      logger.info('postgres notice', { severity: notice.severity, notice: notice.message }),
    connection: {
      application_name: deps.applicationName,
      ...(perTransactionTimeout || !config.statementTimeoutMs
        ? {}
        : { statement_timeout: config.statementTimeoutMs }),
      // A statement queued behind a migration's lock gives up (55P03) and its unit is retried.
      ...(perTransactionTimeout || !config.lockTimeoutMs
        ? {}
        : { lock_timeout: config.lockTimeoutMs }),
      // A transaction orphaned by a dead path must not hold its row locks for hours.
      ...(perTransactionTimeout || !config.idleInTransactionTimeoutMs
        ? {}
        : { idle_in_transaction_session_timeout: config.idleInTransactionTimeoutMs }),
    },
  };
  // The one widening: Options is assignable to DriverOptions, so this narrows back, checked.
  const sql = postgres(config.url, options as postgres.Options<Record<string, never>>);
  return {
    sql,
    pathStalled: () => sockets.pathStalled(),
    onPathHealed: (listener) => sockets.onPathHealed(listener),
    asCancel: (send) => sockets.asCancel(send),
    perTransactionTimeout,
    async end(timeoutS: number) {
      sockets.ending();
      try {
        await sql.end({ timeout: timeoutS });
      } finally {
        sockets.stop();
      }
    },
  };
}
