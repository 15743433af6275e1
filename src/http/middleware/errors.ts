/**
 * First in the chain: turns every error into the contract's JSON body. Only this decides what
 * a client sees; unexpected errors become a bare 500 and are logged with the request id.
 */
import type { Next } from 'koa';
import { AppError, errorBody } from '../../errors';
import type { Logger } from '../../logger';
import type { KeelContext } from '../context';

interface HttpLikeError {
  status?: number;
  statusCode?: number;
  expose?: boolean;
  type?: string;
  message?: string;
}

function fromHttpError(err: HttpLikeError): AppError | null {
  const status = err.status ?? err.statusCode;
  if (!status || status < 400 || status >= 500) return null;
  if (status === 413) return new AppError('payload_too_large');
  if (status === 415)
    return new AppError('unsupported_media_type', 'the request body must be JSON');
  if (status === 404) return new AppError('not_found');
  return new AppError('invalid_request', err.expose && err.message ? err.message : undefined);
}

export function errorHandler({ logger }: { logger: Logger }) {
  return async function errorMiddleware(ctx: KeelContext, next: Next): Promise<void> {
    try {
      await next();
      if (ctx.body === undefined || ctx.body === null) {
        // The router's own answers: a known path with a method it does not serve gets 405 and
        // its Allow header; anything else unmatched is a 404.
        const allow = ctx.response.get('Allow');
        if ((ctx.status === 405 || ctx.status === 501) && allow) {
          throw new AppError(
            'method_not_allowed',
            `${ctx.method} is not allowed here; use ${allow}`,
          );
        }
        if (ctx.status === 404 || ctx.status === 501 || ctx.status === 405) {
          throw new AppError('not_found', `no route for ${ctx.method} ${ctx.path}`);
        }
      }
    } catch (caught) {
      const err =
        caught instanceof AppError ? caught : (fromHttpError(caught as HttpLikeError) ?? null);
      if (err && !err.answered) {
        // The client is gone; nobody reads this answer.
        ctx.status = err.status;
        return;
      }
      if (!err || err.status === 500) {
        logger.error('request failed', {
          reqId: ctx.state.reqId,
          err: caught instanceof Error ? `${caught.name}: ${caught.message}` : String(caught),
          stack: caught instanceof Error ? caught.stack : undefined,
        });
      } else if (err.status === 503) {
        const reason = (err as { reason?: string }).reason;
        logger.warn('request answered 503', {
          reqId: ctx.state.reqId,
          code: err.code,
          ...(reason ? { reason } : {}),
        });
      }
      const e = err ?? new AppError('internal');
      ctx.status = e.status;
      ctx.set(e.headers);
      ctx.body = errorBody(e);
    }
  };
}
