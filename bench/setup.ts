/** The start every Keel benchmark shares: a snapshot of the build, its database, Keel on a free port. */
import { freePort } from './fixtures';
import { createBenchDatabase } from './database';
import { createSnapshot } from './snapshot';
import { createKeel } from './targets';
import type { RunDeps } from './types';

async function setUpKeel({ opts, cleanup, log }: RunDeps) {
  const app = createSnapshot({ cleanup });
  const db = await createBenchDatabase({ app, cleanup, log });
  const keel = createKeel({
    app,
    databaseUrl: db.url,
    port: await freePort(),
    cleanup,
    env: opts.keelEnv,
  });
  return { app, db, keel };
}

export { setUpKeel };
