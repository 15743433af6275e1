/**
 * Every request gets a deadline (REQUEST_TIMEOUT_MS) and an abort signal that fires when the
 * client goes away; database work stops at whichever comes first. A handler still running at
 * the deadline is abandoned and the client gets a 503.
 */
import type { Next } from 'koa';
import { UnavailableError } from '../../errors';
import type { KeelContext } from '../context';

export function deadline({ timeoutMs, now = Date.now }: { timeoutMs: number; now?: () => number }) {
  return async function deadlineMiddleware(ctx: KeelContext, next: Next): Promise<void> {
    const controller = new AbortController();
    const onClose = () => {
      if (!ctx.res.writableFinished) controller.abort();
    };
    ctx.res.once('close', onClose);
    ctx.state.work = {
      deadline: now() + timeoutMs,
      signal: controller.signal,
      reqId: ctx.state.reqId,
    };
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new UnavailableError('database_unavailable', 'the request did not complete in time', 1),
          ),
        timeoutMs,
      );
      timer.unref();
    });
    try {
      await Promise.race([next(), expired]);
    } finally {
      clearTimeout(timer);
    }
  };
}
