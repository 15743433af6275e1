/**
 * The composition root: the only file that reads the environment and starts a worker (prepare
 * the database, listen, signals, ready). The wiring itself is `buildWorker` in ./worker;
 * `startWorker` is exported so integration tests run the exact production start in-process.
 */
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { readFleetLimit } from './db/fleet-limit';
import { budgetInput } from './config/budget';
import { ConfigError, loadConfig, redactUrl, type Config } from './config/config';
import { unpatchedDriverFiles } from './db/driver-patch';
import { describe } from './db/errors';
import { probeHosts } from './db/hosts';
import { MIGRATIONS_DIR, migrate } from './db/migrate';
import { prepareDatabase } from './db/wait';
import { BudgetRefusal, guardBudget } from './lifecycle/budget-guard';
import { installCrashHandlers } from './lifecycle/crash';
import { buildWorker, type BuiltWorker, type WorkerOptions } from './worker';

export type { WorkerOptions } from './worker';

export interface Worker extends Omit<BuiltWorker, 'readiness' | 'janitor'> {
  port: number;
  /** Resolves when the schema is current (may be after `startWorker` returns). */
  prepared: Promise<void>;
}

export async function startWorker(config: Config, options: WorkerOptions = {}): Promise<Worker> {
  const built = await buildWorker(config, options);
  const { server, db, readiness, janitor, reads, shutdown, logger } = built;
  const log = logger.child({ module: 'main' });
  if (options.proc) installCrashHandlers({ logger: log, shutdown, proc: options.proc });

  log.info('starting', {
    database: redactUrl(config.db.url),
    standbys: config.reads?.urls.map(redactUrl) ?? [],
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
        dir: config.migrations.dir ?? MIGRATIONS_DIR,
        applicationName: `keel:${config.instanceId}:${process.pid}:migrate`,
        lockTimeoutMs: config.migrations.lockTimeoutMs,
        statementTimeoutMs: config.migrations.statementTimeoutMs,
        budgetMs: config.migrations.budgetMs,
      }),
    readiness,
    log,
    stopped: () => readiness.draining(),
    hosts: () => probeHosts(config.db.url, { ssl: config.db.ssl, timeoutS: 2 }),
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
  if (!inTime) log.warn('database not ready yet (no primary answers): starting not-ready');

  await new Promise<void>((resolve) => server.listen(config.port, config.host, resolve));
  const port = (server.address() as AddressInfo).port;
  log.info('listening', { host: config.host, port });
  void prepared.then(() => {
    if (readiness.draining()) return;
    janitor.start();
    reads.start();
  });
  const { stats, handle } = built;
  return { server, port, stats, db, handle, reads, shutdown, prepared, logger };
}

/** One line on stderr, then exit: under PM2 stderr goes to a log file asynchronously. */
function refuse(line: string, code: number): void {
  process.stderr.write(`keel: ${line}\n`, () => process.exit(code));
  setTimeout(() => process.exit(code), 1000).unref();
}

/** `extra`: what an embedding entry adds (test support mounts its routes); production none. */
export async function main(
  env: NodeJS.ProcessEnv,
  extra: Pick<WorkerOptions, 'routes'> = {},
): Promise<void> {
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
  await startWorker(config, { ...extra, proc: process, pm2: underPm2(env) });
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
