/** `npm run migrate`: applies pending migrations with the direct (unpooled) URL, then exits. */
import { ConfigError, loadConfig, redactUrl } from '../config/config';
import { dbUrlParts } from '../config/db-url';
import { MIGRATIONS_DIR, migrate } from '../db/migrate';
import { createLogger, flushLogger } from '../logger';

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
  let code = 0;
  try {
    log.info('migrating', { database: redactUrl(config.db.migrationUrl) });
    const applied = await migrate({
      url: config.db.migrationUrl,
      ssl: config.db.ssl,
      logger,
      dir: MIGRATIONS_DIR,
    });
    log.info('migrations done', { applied: applied.length });
  } catch (err) {
    log.error('migration failed', { err: err instanceof Error ? err.message : String(err) });
    code = 1;
  }
  await flushLogger(logger);
  return code;
}

if (require.main === module) {
  void main(process.env).then((code) => process.exit(code));
}
