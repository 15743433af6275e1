/**
 * Jest globalSetup of the integration projects: one Postgres server for the whole run, with a
 * migrated template database. Files that neither stop their server nor need their own settings
 * get it from `startTestPostgres()` and copy their databases from the template
 * (`CREATE DATABASE … TEMPLATE keel_template`), so no file starts a server or migrates from
 * scratch. KEEL_TEST_SHARED_PG=off turns it off (every file starts its own, as before).
 */
import { Writable } from 'node:stream';
import { migrate, MIGRATIONS_DIR } from '../../src/db/migrate';
import { createLogger } from '../../src/logger';
import { psql, shareServer, SHARED_PG_ENV, startTestPostgres, TEMPLATE_DB } from './postgres';
import { setShared } from './shared-server';

export default async function globalSetup(): Promise<void> {
  if (process.env[SHARED_PG_ENV] === 'off') {
    delete process.env[SHARED_PG_ENV];
    return;
  }
  if (process.env[SHARED_PG_ENV]) return; // a server from an earlier project of this run
  const pg = await startTestPostgres();
  setShared(pg);
  await psql(pg.url(), `CREATE DATABASE ${TEMPLATE_DB}`);
  const quiet = new Writable({ write: (_chunk, _enc, cb) => cb() });
  await migrate({
    url: pg.url(TEMPLATE_DB),
    ssl: false,
    logger: createLogger({ level: 'warn', base: {}, stream: quiet }),
    dir: MIGRATIONS_DIR,
  });
  shareServer(pg);
}
