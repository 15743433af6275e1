/**
 * Entry of PM2 app `db` (fork mode): a real local PostgreSQL for users without DATABASE_URL.
 * The only place that reads the environment, handles signals and tells PM2 it is ready.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, parseVars, type LogLevel } from '../config/config';
import { createLogger, flushLogger } from '../logger';
import { embeddedNativeDir, placeForRoot, PlacementError } from './embedded-db-place';
import { createRunner, describe, type EmbeddedDbConfig } from './embedded-db-runner';

export type DbAppConfig = EmbeddedDbConfig & {
  readonly logLevel: LogLevel;
  /** The data directory when KEEL_DATA_DIR is not set: as root it may move to stateDir. */
  readonly defaultDataDir: string;
  /** As root: where binaries and data go when the `postgres` user cannot reach the checkout. */
  readonly stateDir: string;
};

/** The same variables, defaults and errors as the workers' config (src/config/parse.ts). */
export function loadConfig(env: NodeJS.ProcessEnv, projectRoot: string): DbAppConfig {
  const v = parseVars(env, [
    'KEEL_DB_PASSWORD',
    'KEEL_DB_PORT',
    'LOG_LEVEL',
    'KEEL_DATA_DIR',
    'KEEL_DB_STOP_TIMEOUT_MS',
    'KEEL_STATE_DIR',
  ]);
  return Object.freeze({
    dataDir: path.resolve(projectRoot, v.KEEL_DATA_DIR),
    defaultDataDir: path.resolve(projectRoot, parseVars({}, ['KEEL_DATA_DIR']).KEEL_DATA_DIR),
    stateDir: path.resolve(v.KEEL_STATE_DIR),
    port: v.KEEL_DB_PORT,
    password: v.KEEL_DB_PASSWORD,
    database: 'keel',
    logLevel: v.LOG_LEVEL,
    // Crash recovery of a small dev cluster takes seconds; a minute means something is wrong.
    startTimeoutMs: 60_000,
    // A fast shutdown is one checkpoint; PM2's kill_timeout for `db` must be longer than this.
    stopTimeoutMs: v.KEEL_DB_STOP_TIMEOUT_MS,
  });
}

function isLivePostgres(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  try {
    // "pid (comm) state": a zombie holds nothing, yet Postgres would refuse to start over it.
    const [, comm, state] =
      /^\d+ \((.*)\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8')) ?? [];
    return comm === 'postgres' && state !== 'Z';
  } catch {
    return true; // No /proc (macOS): trust a live PID; Postgres checks it again itself.
  }
}

export async function main(): Promise<void> {
  const env = process.env;
  // Redacted from every line, even when the configuration is refused.
  const secrets = [env.KEEL_DB_PASSWORD || parseVars({}, ['KEEL_DB_PASSWORD']).KEEL_DB_PASSWORD];
  const logAt = (level: LogLevel) =>
    createLogger({ level, base: { module: 'embedded-db' }, secrets });
  let config: DbAppConfig;
  try {
    config = loadConfig(env, path.resolve(__dirname, '..', '..'));
  } catch (err) {
    const logger = logAt('info');
    logger.error('bad configuration', { error: describe(err) });
    await flushLogger(logger);
    process.exit(err instanceof ConfigError ? err.exitCode : 1);
  }
  const logger = logAt(config.logLevel);
  const exit = (code: number) => flushLogger(logger).then(() => process.exit(code));
  const projectRoot = path.resolve(__dirname, '..', '..');
  let placed: { nativeDir: string; dataDir: string; runAs?: { uid: number; gid: number } };
  try {
    if (process.getuid?.() === 0) {
      // Postgres refuses root: it runs as `postgres`, who must reach its binaries and data.
      const p = placeForRoot({ projectRoot, ...config });
      for (const line of p.moved)
        logger.info(`out of reach of "postgres" in the checkout: ${line}`);
      placed = { nativeDir: p.nativeDir, dataDir: p.dataDir, runAs: p.user };
    } else {
      placed = { nativeDir: embeddedNativeDir(projectRoot), dataDir: config.dataDir };
    }
  } catch (err) {
    logger.error(describe(err));
    // 78: PM2 does not restart it (stop_exit_codes); a restart cannot fix a path or a user.
    return exit(err instanceof PlacementError ? 78 : 1);
  }
  const runner = createRunner({
    config: { ...config, dataDir: placed.dataDir },
    logger,
    exit,
    nativeDir: placed.nativeDir,
    runAs: placed.runAs,
    isLivePostgres,
  });
  process.on('exit', () => runner.abandon());
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => void runner.shutdown(signal));
  }
  process.on('message', (msg) => {
    if (msg === 'shutdown') void runner.shutdown('shutdown message'); // PM2 shutdown_with_message
  });
  if (await runner.run()) process.send?.('ready');
}

if (require.main === module) void main();
