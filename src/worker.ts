/**
 * Building a worker: every part created and wired, nothing listening and no connection opened
 * (postgres.js connects on first use). `startWorker` in ./main starts what this builds.
 */
import http from 'node:http';
import type { AblateLayer, Config } from './config/config';
import { dbUrlParts } from './config/db-url';
import { LOG_FLUSH_MS, STDOUT_DRAIN_MS } from './config/shutdown-budget';
import { createReads, type Reads } from './db/reads/reads';
import { MIGRATIONS_DIR, newestMigration } from './db/migrate';
import { createDb, type Db } from './db/runner';
import { createSql, type SqlHandle } from './db/sql';
import { createApp, type ExtraRoutes } from './http/app';
import { readOpenApi } from './http/routes/ops';
import { applyServerLimits, serverOptions } from './http/server-limits';
import { createAccounts } from './ledger/accounts';
import { createKeyJanitor, type KeyJanitor } from './ledger/idempotency';
import { createTransfers } from './ledger/transfers';
import { trackConnections } from './lifecycle/connections';
import { streamDrained } from './lifecycle/flush';
import { createReadiness, type Readiness } from './lifecycle/readiness';
import { createShutdown, type Shutdown } from './lifecycle/shutdown';
import {
  createBatchedStream,
  createLineWriter,
  createLogger,
  flushLogger,
  type Logger,
} from './logger';
import { createDbStats, type DbStats } from './metrics/db-stats';
import { createMetricsEndpoint, registryRenderer } from './metrics/endpoint';
import { createPm2Metrics, injectedPm2Io, PM2_SCHEMA_METRIC } from './metrics/pm2';
import { createReadStats } from './metrics/read-stats';
import { createWorkerMetrics } from './metrics/prometheus';
import { createSiblingMetrics, type SiblingMetrics } from './metrics/siblings';

export interface WorkerOptions {
  /** Defaults to a JSON logger on stdout. */
  logger?: Logger;
  exit?: (code: number) => void;
  /** Install signal and crash handlers on this process (production only). */
  proc?: NodeJS.Process;
  /** Running under PM2: live figures for `pm2 monit`, and a /metrics for every worker of the
   * app, which meet in `metricsDir`. */
  pm2?: { metricsDir: string };
  /** Routes beyond the API's (test support mounts its test-only routes; production none). */
  routes?: readonly ExtraRoutes[];
}

export interface BuiltWorker {
  server: http.Server;
  stats: DbStats;
  db: Db;
  handle: SqlHandle;
  /** Standby pools and the read router (DATABASE_READ_URL); started once the schema is current. */
  reads: Reads;
  readiness: Readiness;
  janitor: KeyJanitor;
  shutdown: Shutdown;
  logger: Logger;
}

function passwords(config: Config): string[] {
  return [config.db.url, config.db.migrationUrl, ...(config.reads?.urls ?? [])]
    .map((u) => dbUrlParts(u).password)
    .filter((p) => p.length > 0);
}

export async function buildWorker(
  config: Config,
  options: WorkerOptions = {},
): Promise<BuiltWorker> {
  const worker = config.instanceId;
  const off = (layer: AblateLayer) => config.benchAblate.includes(layer);
  const stdout = createBatchedStream(process.stdout);
  const logOptions = {
    level: config.logLevel,
    base: { worker, pid: process.pid },
    secrets: passwords(config),
    stream: stdout,
  };
  const logger = options.logger ?? createLogger(logOptions);
  // The access line (one a request) skips winston's stream chain; a given logger gets it all.
  const accessLine = options.logger
    ? undefined
    : createLineWriter({ ...logOptions, meta: { module: 'http' } });
  const log = logger.child({ module: 'main' });
  const stats = createDbStats();
  const readiness = createReadiness();
  const handle = createSql({
    config: config.db,
    logger: logger.child({ module: 'db' }),
    stats,
    applicationName: `keel:${worker}:${process.pid}`,
    ablate: { sockets: off('socket'), stallWatch: off('stall-watch') },
  });
  const db = createDb({
    handle,
    logger: logger.child({ module: 'db.retry' }),
    stats,
    budgetMs: config.db.retryBudgetMs,
    statementTimeoutMs: config.db.statementTimeoutMs,
    idleInTransactionTimeoutMs: config.db.idleInTransactionTimeoutMs,
    lockTimeoutMs: config.db.lockTimeoutMs,
    slots: config.db.poolMax,
    noAdmission: off('admission'),
  });
  const readStats = createReadStats();
  const reads = createReads({
    db: config.db,
    reads: config.reads,
    primary: db,
    primaryHandle: handle,
    logger: logger.child({ module: 'db' }),
    stats: readStats,
    applicationName: `keel:${worker}:${process.pid}`,
  });
  const limits = {
    keepAliveTimeoutMs: config.keepAliveTimeoutMs,
    headersTimeoutMs: config.headersTimeoutMs,
    requestReceiveTimeoutMs: config.requestReceiveTimeoutMs,
    maxConnections: config.maxConnections,
  };
  const server = http.createServer(serverOptions(limits));
  const tracker = trackConnections(server);
  const metrics = createWorkerMetrics({
    stats,
    worker,
    inFlight: tracker.inFlight,
    poolMax: config.db.poolMax,
    reads: {
      stats: readStats,
      lagBoundS: config.reads ? config.reads.maxLagMs / 1000 : null,
      standbys: () => {
        const set = reads.set;
        if (!set) return [];
        const eligible = new Set(set.eligible());
        return set.standbys.map((s) => ({
          address: s.address,
          inReadSet: eligible.has(s),
          lagS: set.staleness(s),
          pool: s.stats,
        }));
      },
    },
  });
  // Under PM2 cluster mode a scrape lands on one random worker, which answers for all of them.
  const siblingMetrics = (dir: string): Promise<SiblingMetrics | null> =>
    createSiblingMetrics({
      dir,
      worker,
      registry: metrics.registry,
      logger: logger.child({ module: 'metrics' }),
    }).catch((err: unknown) => {
      log.warn('machine-wide /metrics unavailable: this worker answers for itself', {
        error: err instanceof Error ? err.message : String(err),
      });
      return null;
    });
  const siblings = options.pm2 ? await siblingMetrics(options.pm2.metricsDir) : null;
  const pm2Io = options.pm2 ? injectedPm2Io() : null;
  const pm2Metrics = pm2Io
    ? createPm2Metrics({ io: pm2Io, stats, inFlight: tracker.inFlight })
    : null;
  if (options.pm2 && !pm2Io) log.info('PM2 injected no @pm2/io agent (pmx: false): no pm2 metrics');
  // The newest migration this release ships, for `pm2 show` and the migrate command's contract
  // gate (src/cli/pm2-fleet.ts): a contract step waits until every worker online knows its expand.
  const schema = pm2Io ? (newestMigration(config.migrations.dir ?? MIGRATIONS_DIR) ?? 'none') : '';
  pm2Io?.metric({ name: PM2_SCHEMA_METRIC, value: () => schema });
  const app = createApp({
    config,
    logger,
    db,
    readiness,
    routes: options.routes,
    accounts: createAccounts({ db: reads.db }),
    transfers: createTransfers({ db: reads.db }),
    openapi: readOpenApi(),
    metrics: createMetricsEndpoint({
      ...(siblings
        ? { render: siblings.render, contentType: siblings.contentType }
        : registryRenderer(metrics.registry)),
      token: config.metricsToken,
    }),
    onRequestDone: off('metrics')
      ? undefined
      : (ctx, seconds) => {
          const route = (ctx as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
          metrics.observeRequest(ctx.method, route, ctx.status, seconds);
          pm2Metrics?.observeRequest(route, seconds);
        },
    ablate: config.benchAblate,
    ...(accessLine ? { accessLine } : {}),
  });
  server.on('request', app.callback());
  // Idle keep-alive outlives any balancer's in front (Railway's edge: 60 s); slow headers and
  // bodies get a 408 and a closed socket (./http/server-limits).
  applyServerLimits(server, limits);
  // Every worker runs the sweep timer; an advisory lock lets one of them sweep at a time.
  const janitor = createKeyJanitor({
    db,
    logger: logger.child({ module: 'idempotency' }),
    intervalMs: config.keySweepIntervalMs,
  });

  const shutdown = createShutdown({
    server,
    tracker,
    readiness,
    timeoutMs: config.shutdownTimeoutMs,
    // The worker's own steps, in order, between the drain and closing the database.
    steps: [
      { name: 'stop key sweeper', run: () => janitor.stop() },
      { name: 'stop standby checks', run: () => reads.set?.stop() },
      { name: 'stop pm2 metrics', run: () => pm2Metrics?.stop() },
      { name: 'close sibling metrics', run: () => siblings?.close() },
    ],
    closeDb: async (timeoutS) => {
      db.breaker.stop();
      await Promise.all([handle.end(timeoutS), reads.end(timeoutS)]);
    },
    flushLogs: async () => {
      if (options.logger) return;
      await flushLogger(logger, LOG_FLUSH_MS);
      stdout.flush();
      // Under PM2, stdout is an async file stream: wait for it, or exit drops the last lines.
      await streamDrained(process.stdout, STDOUT_DRAIN_MS);
    },
    log: (msg, meta) => log.info(msg, meta),
    exit: options.exit ?? ((code) => process.exit(code)),
  });
  return { server, stats, db, handle, reads, readiness, janitor, shutdown, logger };
}
