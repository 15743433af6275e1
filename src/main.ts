/**
 * The composition root and the only file that reads the environment, creates the database
 * client and the logger, listens, installs signal handlers and tells PM2 it is ready.
 * `startWorker` is exported so integration tests run the exact production wiring in-process.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, loadConfig, redactUrl, type Config } from './config/config';
import { describe } from './db/errors';
import { MIGRATIONS_DIR, migrate } from './db/migrate';
import { createDb, type Db } from './db/runner';
import { createSql, type SqlHandle } from './db/sql';
import { prepareDatabase } from './db/wait';
import { createApp } from './http/app';
import { createAccounts } from './ledger/accounts';
import { createTransfers } from './ledger/transfers';
import { trackConnections } from './lifecycle/connections';
import { installCrashHandlers } from './lifecycle/crash';
import { createReadiness } from './lifecycle/readiness';
import { createShutdown, type Shutdown } from './lifecycle/shutdown';
import { createLogger, flushLogger, type Logger } from './logger';
import { createDbStats, type DbStats } from './metrics/db-stats';
import { createMetricsEndpoint, registryRenderer } from './metrics/endpoint';
import { createWorkerMetrics } from './metrics/prometheus';

export interface WorkerOptions {
  /** Defaults to a JSON logger on stdout. */
  logger?: Logger;
  exit?: (code: number) => void;
  /** Install signal and crash handlers on this process (production only). */
  proc?: NodeJS.Process;
}

export interface Worker {
  server: http.Server;
  port: number;
  stats: DbStats;
  db: Db;
  handle: SqlHandle;
  shutdown: Shutdown;
  /** Resolves when the schema is current (may be after `startWorker` returns). */
  prepared: Promise<void>;
}

function passwords(config: Config): string[] {
  return [config.db.url, config.db.migrationUrl]
    .map((u) => decodeURIComponent(new URL(u).password))
    .filter((p) => p.length > 0);
}

export async function startWorker(config: Config, options: WorkerOptions = {}): Promise<Worker> {
  const worker = config.instanceId;
  const logger =
    options.logger ??
    createLogger({
      level: config.logLevel,
      base: { worker, pid: process.pid },
      secrets: passwords(config),
    });
  const log = logger.child({ module: 'main' });
  const stats = createDbStats();
  const readiness = createReadiness();
  const handle = createSql({
    config: config.db,
    logger: logger.child({ module: 'db' }),
    stats,
    applicationName: `keel:${worker}:${process.pid}`,
  });
  const db = createDb({
    handle,
    logger: logger.child({ module: 'db.retry' }),
    stats,
    budgetMs: config.db.retryBudgetMs,
    statementTimeoutMs: config.db.statementTimeoutMs,
  });
  const metrics = createWorkerMetrics({ stats, worker });
  const app = createApp({
    config,
    logger,
    db,
    readiness,
    accounts: createAccounts({ db }),
    transfers: createTransfers({ db }),
    metrics: createMetricsEndpoint({
      ...registryRenderer(metrics.registry),
      token: config.metricsToken,
    }),
    onRequestDone: (ctx, seconds) => {
      const route = (ctx as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      metrics.observeRequest(ctx.method, route, ctx.status, seconds);
    },
  });

  const server = http.createServer(app.callback());
  // Longer than any load balancer's idle timeout in front (Railway's edge: 60 s), so the
  // balancer, not us, closes idle keep-alive sockets and never reuses one we just closed.
  server.keepAliveTimeout = config.keepAliveTimeoutMs;
  server.headersTimeout = config.keepAliveTimeoutMs + 1000;
  server.on('request', (_req, res) => {
    stats.inFlight += 1;
    res.once('close', () => (stats.inFlight -= 1));
  });
  const tracker = trackConnections(server);
  const shutdown = createShutdown({
    server,
    tracker,
    readiness,
    timeoutMs: config.shutdownTimeoutMs,
    closeDb: async (timeoutS) => {
      db.breaker.stop();
      await handle.end(timeoutS);
    },
    flushLogs: () => (options.logger ? Promise.resolve() : flushLogger(logger)),
    log: (msg, meta) => log.info(msg, meta),
    exit: options.exit ?? ((code) => process.exit(code)),
  });
  if (options.proc) installCrashHandlers({ logger: log, shutdown, proc: options.proc });

  log.info('starting', {
    database: redactUrl(config.db.url),
    embedded: config.db.embedded,
    poolMax: config.db.poolMax,
    idleTimeoutS: config.db.idleTimeoutS,
    maxLifetimeS: config.db.maxLifetimeS,
  });

  // Reach the database and migrate (advisory lock) before reporting ready; if the database is
  // not there within READY_WAIT_MS, start not-ready and keep preparing in the background.
  const prepared = prepareDatabase({
    ping: () => db.ping(1000),
    migrate: () =>
      migrate({
        url: config.db.migrationUrl,
        ssl: config.db.ssl,
        logger,
        dir: MIGRATIONS_DIR,
        applicationName: `keel:${worker}:${process.pid}:migrate`,
      }),
    readiness,
    log,
    stopped: () => readiness.draining(),
  }).catch(async (err) => {
    log.error('migrations failed', describe(err));
    await shutdown('migration failure', 1);
  });
  const inTime = await Promise.race([
    prepared.then(() => true),
    new Promise<false>((r) => setTimeout(r, config.readyWaitMs, false).unref()),
  ]);
  if (!inTime) log.warn('database not reachable yet: starting not-ready');

  await new Promise<void>((resolve) => server.listen(config.port, config.host, resolve));
  const port = (server.address() as AddressInfo).port;
  log.info('listening', { host: config.host, port });
  return { server, port, stats, db, handle, shutdown, prepared };
}

export async function main(env: NodeJS.ProcessEnv): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      const code = err.exitCode;
      // Exit once the line is written: under PM2 stderr goes to a log file asynchronously.
      process.stderr.write(`keel: ${err.message}\n`, () => process.exit(code));
      setTimeout(() => process.exit(code), 1000).unref();
      return;
    }
    throw err;
  }
  await startWorker(config, { proc: process });
  process.send?.('ready');
}

if (require.main === module) {
  void main(process.env);
}
