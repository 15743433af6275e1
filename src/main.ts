/**
 * The composition root and the only file that reads the environment, creates the database
 * client and the logger, listens, installs signal handlers and tells PM2 it is ready.
 * `startWorker` is exported so integration tests run the exact production wiring in-process.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { readFleetLimit } from './cli/diagnose/fleet-limit';
import { budgetInput } from './config/budget';
import { ConfigError, loadConfig, redactUrl, type Config } from './config/config';
import { dbUrlParts } from './config/db-url';
import { unpatchedDriverFiles } from './db/driver-patch';
import { describe } from './db/errors';
import { MIGRATIONS_DIR, migrate } from './db/migrate';
import { createDb, type Db } from './db/runner';
import { createSql, type SqlHandle } from './db/sql';
import { prepareDatabase } from './db/wait';
import { createApp } from './http/app';
import { applyServerLimits, serverOptions } from './http/server-limits';
import { createAccounts } from './ledger/accounts';
import { createKeyJanitor } from './ledger/idempotency';
import { createTransfers } from './ledger/transfers';
import { BudgetRefusal, guardBudget } from './lifecycle/budget-guard';
import { trackConnections } from './lifecycle/connections';
import { installCrashHandlers } from './lifecycle/crash';
import { streamDrained } from './lifecycle/flush';
import { createReadiness } from './lifecycle/readiness';
import { createShutdown, type Shutdown } from './lifecycle/shutdown';
import { createBatchedStream, createLogger, flushLogger, type Logger } from './logger';
import { createDbStats, type DbStats } from './metrics/db-stats';
import { createMetricsEndpoint, registryRenderer } from './metrics/endpoint';
import { createPm2Metrics, injectedPm2Io } from './metrics/pm2';
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
}

export interface Worker {
  server: http.Server;
  port: number;
  stats: DbStats;
  db: Db;
  handle: SqlHandle;
  shutdown: Shutdown;
  logger: Logger;
  /** Resolves when the schema is current (may be after `startWorker` returns). */
  prepared: Promise<void>;
}

function passwords(config: Config): string[] {
  return [config.db.url, config.db.migrationUrl]
    .map((u) => dbUrlParts(u).password)
    .filter((p) => p.length > 0);
}

export async function startWorker(config: Config, options: WorkerOptions = {}): Promise<Worker> {
  const worker = config.instanceId;
  const stdout = createBatchedStream(process.stdout);
  const logger =
    options.logger ??
    createLogger({
      level: config.logLevel,
      base: { worker, pid: process.pid },
      secrets: passwords(config),
      stream: stdout,
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
    idleInTransactionTimeoutMs: config.db.idleInTransactionTimeoutMs,
    slots: config.db.poolMax,
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
  });
  // Under PM2 cluster mode a scrape lands on one random worker, which answers for all of them.
  const machineMetrics = (dir: string): Promise<SiblingMetrics | null> =>
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
  const siblings = options.pm2 ? await machineMetrics(options.pm2.metricsDir) : null;
  const pm2Io = options.pm2 ? injectedPm2Io() : null;
  const pm2Metrics = pm2Io
    ? createPm2Metrics({ io: pm2Io, stats, inFlight: tracker.inFlight })
    : null;
  if (options.pm2 && !pm2Io) log.info('PM2 injected no @pm2/io agent (pmx: false): no pm2 metrics');
  const app = createApp({
    config,
    logger,
    db,
    readiness,
    accounts: createAccounts({ db }),
    transfers: createTransfers({ db }),
    metrics: createMetricsEndpoint({
      ...(siblings
        ? { render: siblings.render, contentType: siblings.contentType }
        : registryRenderer(metrics.registry)),
      token: config.metricsToken,
    }),
    onRequestDone: (ctx, seconds) => {
      const route = (ctx as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      metrics.observeRequest(ctx.method, route, ctx.status, seconds);
      pm2Metrics?.observeRequest(route, seconds);
    },
  });

  server.on('request', app.callback());
  server.once('close', () => {
    pm2Metrics?.stop();
    void siblings?.close();
  });
  // Longer than any load balancer's idle timeout in front (Railway's edge: 60 s), so the
  // balancer, not us, closes idle keep-alive sockets and never reuses one we just closed.
  // Headers and body that do not arrive in time get a 408 and a closed socket (./http/server-limits).
  applyServerLimits(server, limits);
  const shutdown = createShutdown({
    server,
    tracker,
    readiness,
    timeoutMs: config.shutdownTimeoutMs,
    closeDb: async (timeoutS) => {
      db.breaker.stop();
      await handle.end(timeoutS);
    },
    flushLogs: async () => {
      if (options.logger) return;
      await flushLogger(logger);
      stdout.flush();
      // Under PM2, stdout is an async file stream: wait for it, or exit drops the last lines.
      await streamDrained(process.stdout, 1000);
    },
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
  })
    // Once the database answers: the fleet's worst case against its max_connections (or PgBouncer's).
    .then(() =>
      guardBudget({
        mode: config.platform.budgetCheck,
        input: budgetInput(config),
        readLimit: () => readFleetLimit(config),
        log,
      }),
    )
    .then(() => undefined)
    .catch(async (err) => {
      if (err instanceof BudgetRefusal) return shutdown('connection budget', err.exitCode);
      log.error('migrations failed', describe(err));
      await shutdown('migration failure', 1);
    });
  // A referenced timer: while the database is unreachable nothing else keeps the process alive
  // until the server listens (an unref'd one let it exit 0 at once on ECONNREFUSED).
  let readyWait: NodeJS.Timeout | undefined;
  const inTime = await Promise.race([
    prepared.then(() => true),
    new Promise<false>((r) => (readyWait = setTimeout(r, config.readyWaitMs, false))),
  ]);
  clearTimeout(readyWait);
  if (!inTime) log.warn('database not reachable yet: starting not-ready');

  await new Promise<void>((resolve) => server.listen(config.port, config.host, resolve));
  const port = (server.address() as AddressInfo).port;
  log.info('listening', { host: config.host, port });
  // Every worker runs the sweep timer; an advisory lock lets one of them sweep at a time, so a
  // restart of any one worker never stops the sweeping.
  const janitor = createKeyJanitor({
    db,
    logger: logger.child({ module: 'idempotency' }),
    intervalMs: config.keySweepIntervalMs,
  });
  void prepared.then(() => {
    if (!readiness.draining()) janitor.start();
  });
  server.once('close', () => janitor.stop());
  return { server, port, stats, db, handle, shutdown, prepared, logger };
}

/** One line on stderr, then exit: under PM2 stderr goes to a log file asynchronously. */
function refuse(line: string, code: number): void {
  process.stderr.write(`keel: ${line}\n`, () => process.exit(code));
  setTimeout(() => process.exit(code), 1000).unref();
}

export async function main(env: NodeJS.ProcessEnv): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return refuse(err.message, err.exitCode);
    throw err;
  }
  const unpatched = unpatchedDriverFiles();
  if (unpatched.length > 0) {
    // 78 (EX_CONFIG): PM2 does not restart it; a reinstall, not a restart, fixes this.
    return refuse(
      `the postgres.js patch (patches/postgres+3.4.9.patch) is not applied to ${unpatched.join(', ')}: ` +
        'run `npm ci` without --ignore-scripts (its postinstall runs patch-package), then start again',
      78,
    );
  }
  await startWorker(config, { proc: process, pm2: underPm2(env) });
  process.send?.('ready');
}

/** PM2 sets pm_id and an IPC channel in every process it starts. */
function underPm2(env: NodeJS.ProcessEnv): WorkerOptions['pm2'] {
  if (env.pm_id === undefined || typeof process.send !== 'function') return undefined;
  // One directory per app per PM2 daemon: the app's workers, and nothing else, meet there.
  const home = env.PM2_HOME || path.join(os.homedir(), '.pm2');
  return { metricsDir: path.join(home, 'keel-metrics', encodeURIComponent(env.name ?? 'app')) };
}

if (require.main === module) {
  void main(process.env);
}
