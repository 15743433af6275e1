import type { Next } from 'koa';
import type { Readiness } from '../../lifecycle/readiness';
import type { KeelContext } from '../context';

/** While draining, every answer tells the client to close its keep-alive socket. */
export function drain({ readiness }: { readiness: Readiness }) {
  return async function drainMiddleware(ctx: KeelContext, next: Next): Promise<void> {
    try {
      await next();
    } finally {
      if (readiness.draining()) ctx.set('Connection', 'close');
    }
  };
}
