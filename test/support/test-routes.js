// @ts-check
'use strict';
const { setImmediate } = require('node:timers');
/**
 * Routes for lifecycle tests only, mounted by the test support code (never part of dist/): a slow
 * database request, a forced crash and the worker's pid. Plain JavaScript with no imports, so a
 * worker that PM2 starts from ./pm2-worker.js loads the same file the in-process tests do.
 */

/** @param {string | string[] | undefined} v */
function millis(v) {
  const s = typeof v === 'string' ? v : '1000';
  if (!/^\d{1,6}$/.test(s)) throw new Error(`ms must be 0-999999, got ${JSON.stringify(v)}`);
  return Number(s);
}

/**
 * @param {import('@koa/router').default<import('../../src/http/context').KeelState>} router
 * @param {{ db: import('../../src/db/runner').Db }} deps
 */
function testOnlyRoutes(router, deps) {
  router.get('/__test/slow', async (ctx) => {
    const wait = millis(ctx.query.ms);
    await deps.db.read((sql) => sql`select pg_sleep(${wait / 1000})`, ctx.state.work);
    ctx.body = { slept: wait, pid: process.pid };
  });

  router.post('/__test/crash', (ctx) => {
    const reqId = ctx.state.reqId;
    setImmediate(() => {
      throw Object.assign(new Error('forced crash for a lifecycle test'), { reqId });
    });
    ctx.status = 202;
    ctx.body = { crashing: process.pid };
  });

  router.get('/__test/whoami', (ctx) => {
    ctx.body = { pid: process.pid, execArgv: process.execArgv };
  });
}

module.exports = { testOnlyRoutes };
