import type { Next } from 'koa';
import type { Readiness } from '../../lifecycle/readiness';
import type { KeelContext } from '../context';

export interface DrainDeps {
  readiness: Readiness;
  /** Seconds for `Keep-Alive: timeout=N` (config.keepAliveHintS). */
  keepAliveHintS: number;
}

/**
 * While draining, every answer tells the client to close its keep-alive socket; so does an
 * answer given before the request's body has all arrived (a 413 on its declared length, a 400 or
 * 415 that never reads it): the socket cannot carry another request until the rest has come, and
 * a client that stopped mid-body would wait on it forever. Otherwise,
 * every keep-alive answer advertises an idle time no longer than the drain deadline (Node would
 * advertise the server's 65 s idle timer), so no client still counts on a socket the drain's
 * deadline ends.
 */
export function drain({ readiness, keepAliveHintS }: DrainDeps) {
  const hint = `timeout=${keepAliveHintS}`;
  return async function drainMiddleware(ctx: KeelContext, next: Next): Promise<void> {
    try {
      await next();
    } finally {
      // Bytes that came with the headers are parsed after this turn: look once more then.
      if (!ctx.req.complete) await new Promise((resolve) => setImmediate(resolve));
      if (readiness.draining() || !ctx.req.complete) ctx.set('Connection', 'close');
      // Setting Keep-Alive ourselves makes Node leave out its own (timeout=65).
      // Node decided from the request (HTTP version, `Connection`) whether the socket stays.
      else if (ctx.res.shouldKeepAlive) ctx.set('Keep-Alive', hint);
    }
  };
}
