import { randomUUID } from 'node:crypto';
import type { Next } from 'koa';
import type { KeelContext } from '../context';

// 1..128 printable ASCII characters, as the contract allows; anything else is replaced.
const ACCEPTABLE = /^[\x20-\x7e]{1,128}$/;

export function requestId() {
  return async function requestIdMiddleware(ctx: KeelContext, next: Next): Promise<void> {
    const given = ctx.get('X-Request-Id');
    ctx.state.reqId = ACCEPTABLE.test(given) ? given : randomUUID();
    ctx.set('X-Request-Id', ctx.state.reqId);
    await next();
  };
}
