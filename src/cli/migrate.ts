/**
 * `npm run migrate`: applies pending migrations with the direct (unpooled) URL, then exits.
 * Exit codes a deploy step can act on: 0 applied (or nothing to do), 1 a migration failed (the
 * file and the server's message are logged), 75 the lock-wait budget ran out (nothing of that
 * file was applied; the log names the blockers: retry the deploy), 69 the database could not be
 * reached, 78 the configuration is invalid.
 */
import { ConfigError, loadConfig, redactUrl } from '../config/config';
import { dbUrlParts } from '../config/db-url';
import { classify, describe } from '../db/errors';
import { describeBlocker } from '../db/lock-watch';
import { MIGRATIONS_DIR, migrate, MigrationLockTimeout } from '../db/migrate';
import { createLogger, flushLogger } from '../logger';

// sysexits.h: EX_TEMPFAIL (try again later) and EX_UNAVAILABLE (a service is not there).
export const EXIT_LOCK_BUDGET = 75;
export const EXIT_UNREACHABLE = 69;

export async function main(env: NodeJS.ProcessEnv): Promise<number> {
  let config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`keel migrate: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
  const password = dbUrlParts(config.db.migrationUrl).password;
  const logger = createLogger({
    level: config.logLevel,
    base: { pid: process.pid },
    secrets: password ? [password] : [],
  });
  const log = logger.child({ module: 'migrate' });
  const m = config.migrations;
  let code = 0;
  try {
    log.info('migrating', {
      database: redactUrl(config.db.migrationUrl),
      lockTimeoutMs: m.lockTimeoutMs,
      budgetMs: m.budgetMs,
    });
    const applied = await migrate({
      url: config.db.migrationUrl,
      ssl: config.db.ssl,
      logger,
      dir: m.dir ?? MIGRATIONS_DIR,
      lockTimeoutMs: m.lockTimeoutMs,
      statementTimeoutMs: m.statementTimeoutMs,
      budgetMs: m.budgetMs,
    });
    log.info('migrations done', { applied: applied.length });
  } catch (err) {
    if (err instanceof MigrationLockTimeout) {
      log.error('migration gave up waiting for locks: retry the deploy once the blockers end', {
        migration: err.migration,
        waitedMs: err.waitedMs,
        attempts: err.attempts,
        blockers: err.blockers.map(describeBlocker),
        exitCode: EXIT_LOCK_BUDGET,
      });
      code = EXIT_LOCK_BUDGET;
    } else if (classify(err) === 'connection') {
      log.error('migration failed: the database could not be reached', {
        ...describe(err),
        exitCode: EXIT_UNREACHABLE,
      });
      code = EXIT_UNREACHABLE;
    } else {
      log.error('migration failed', { ...describe(err), exitCode: 1 });
      code = 1;
    }
  }
  await flushLogger(logger);
  return code;
}

if (require.main === module) {
  void main(process.env).then((code) => process.exit(code));
}
