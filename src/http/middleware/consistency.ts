/**
 * Consistency-Token (contract v1.2, "Consistency across replicas"): a GET under /api/ may
 * present tokens (one, or several joined by ", ") and its reads reflect at least their state
 * (src/db/reads); every 2xx answer under /api/ names the state it reflects. A token this server
 * did not make is refused 400 before any work.
 */
import type { Next } from 'koa';
import { encodeToken, parseTokenHeader, type Consistency } from '../../db/reads/lsn';
import { ValidationError } from '../../errors';
import { isApiPath } from '../api-path';
import type { KeelContext } from '../context';

export function consistency() {
  return async function consistencyMiddleware(ctx: KeelContext, next: Next): Promise<void> {
    if (!isApiPath(ctx.path)) return next();
    const state: Consistency = { after: null, seen: null };
    const sent = ctx.req.headers['consistency-token'];
    if (sent !== undefined && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
      const after = parseTokenHeader(Array.isArray(sent) ? sent.join(', ') : sent);
      if (after === null) {
        throw new ValidationError('Consistency-Token is not a token from this service', [
          { path: 'Consistency-Token', message: 'must be tokens from earlier answers' },
        ]);
      }
      state.after = after;
    }
    ctx.state.work.consistency = state;
    await next();
    // Every 2xx carries one (the document requires it): an answer whose state no read or write
    // named says "the primary's", which a later read can always be given.
    if (ctx.status >= 200 && ctx.status < 300) {
      ctx.set('Consistency-Token', encodeToken(state.seen ?? 'primary'));
    }
  };
}
