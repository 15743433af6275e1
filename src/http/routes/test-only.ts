/**
 * Routes for lifecycle tests only (KEEL_ENABLE_TEST_ROUTES=true): a slow database request and a
 * forced crash. They are never mounted unless that flag is set.
 */
import Router from '@koa/router';
import { z } from 'zod';
import type { Db } from '../../db/runner';
import type { KeelState } from '../context';
import { validate } from '../validate';

const ms = z
  .string()
  .regex(/^\d{1,6}$/)
  .transform(Number);

export function testOnlyRoutes(router: Router<KeelState>, deps: { db: Db }): void {
  router.get('/__test/slow', async (ctx) => {
    const wait = validate(ms, ctx.query.ms ?? '1000', 'ms');
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
    ctx.body = { pid: process.pid };
  });
}
