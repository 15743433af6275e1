/**
 * Every request gets a deadline (REQUEST_TIMEOUT_MS) and an abort signal that fires when the
 * client goes away or when the deadline comes (reason `DEADLINE`): database work stops there,
 * queued work is dropped, and an open transaction rolls back instead of committing. The runner
 * then answers what really happened (database_unavailable, or outcome_unknown after a COMMIT).
 */
import type { Next } from 'koa';
import { DEADLINE } from '../../db/runner';
import { UnavailableError } from '../../errors';
import type { KeelContext } from '../context';

// After the abort, how long a handler may take to settle before it is answered regardless (the
// runner settles at once; this only bounds work that ignores the signal).
const SETTLE_MS = 1000;

export interface DeadlineDeps {
  timeoutMs: number;
  now?: () => number;
  settleMs?: number;
}

export function deadline({ timeoutMs, now = Date.now, settleMs = SETTLE_MS }: DeadlineDeps) {
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
      timer = setTimeout(() => {
        controller.abort(DEADLINE);
        timer = setTimeout(() => reject(UnavailableError.of('requestDeadline')), settleMs);
        timer.unref();
      }, timeoutMs);
      timer.unref();
    });
    try {
      await Promise.race([next(), expired]);
    } finally {
      clearTimeout(timer);
    }
  };
}
