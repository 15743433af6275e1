/**
 * `npm run migrate`: applies pending migrations with the direct (unpooled) URL, then exits.
 * Exit codes a deploy step can act on: 0 applied (or nothing to do), 1 a migration failed (the
 * file and the server's message are logged), 75 the lock-wait budget ran out (nothing of that
 * file was applied; the log names the blockers: retry the deploy), 69 the database could not be
 * reached, 77 a contract step was refused (a worker of the previous release is online, or no PM2
 * daemon here can say; nothing was applied), 78 the configuration is invalid.
 */
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, redactUrl } from '../config/config';
import { dbUrlParts } from '../config/db-url';
import { ContractRefused } from '../db/contract';
import { classify, describe } from '../db/errors';
import { describeBlocker } from '../db/lock-watch';
import { MIGRATIONS_DIR, migrate, MigrationLockTimeout } from '../db/migrate';
import { createLogger, flushLogger } from '../logger';
import { pm2ContractGate } from './pm2-fleet';

// sysexits.h: EX_TEMPFAIL (try again later) and EX_UNAVAILABLE (a service is not there).
export const EXIT_LOCK_BUDGET = 75;
export const EXIT_UNREACHABLE = 69;
// EX_NOPERM: not now; nothing was applied (docs/migrations.md, expand / contract).
export const EXIT_CONTRACT_REFUSED = 77;

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
      contractGate: pm2ContractGate({
        home: env.PM2_HOME || path.join(os.homedir(), '.pm2'),
        confirm: m.contractConfirm,
        log,
      }),
    });
    const applied = await migrate({
      url: config.db.migrationUrl,
      ssl: config.db.ssl,
      logger,
      dir: m.dir ?? MIGRATIONS_DIR,
      lockTimeoutMs: m.lockTimeoutMs,
      statementTimeoutMs: m.statementTimeoutMs,
      budgetMs: m.budgetMs,
      contractGate: pm2ContractGate({
        home: env.PM2_HOME || path.join(os.homedir(), '.pm2'),
        confirm: m.contractConfirm,
        log,
      }),
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
    } else if (err instanceof ContractRefused) {
      log.error('contract step refused: nothing applied', {
        migration: err.migration,
        expand: err.expand,
        reason: err.reason,
        workers: err.workers.map((w) => ({ pid: w.pid, pmId: w.id, schema: w.schema })),
        exitCode: EXIT_CONTRACT_REFUSED,
      });
      code = EXIT_CONTRACT_REFUSED;
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
