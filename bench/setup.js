'use strict';
/** The start every Keel benchmark shares: a snapshot of the build, its database, Keel on a free port. */
const { freePort } = require('./fixtures');
const { createBenchDatabase } = require('./database');
const { createSnapshot } = require('./snapshot');
const { createKeel } = require('./targets');

async function setUpKeel({ opts, cleanup, log }) {
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

module.exports = { setUpKeel };
