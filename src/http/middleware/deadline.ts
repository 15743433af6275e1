/**
 * Every request gets a deadline (REQUEST_TIMEOUT_MS) and an abort signal that fires when the
 * client goes away or when the deadline comes (reason `DEADLINE`): database work stops there,
 * queued work is dropped, and an open transaction rolls back instead of committing. The runner
 * then answers what really happened (database_unavailable, or outcome_unknown after a COMMIT).
 *
 * The deadline is for the work, not for the client's upload: while a body is being received
 * (`ctx.state.receive`) its clock stops, and it starts afresh once the body has arrived. A body
 * that stops arriving is the client's fault, answered `408 request_timeout` by the server's
 * receive timeout (REQUEST_RECEIVE_TIMEOUT_MS, ../server-limits), never a 503 that blames the
 * database and invites a retry.
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

/**
 * Benchmarks only (KEEL_BENCH_ABLATE=deadline): the deadline as a number the database budget
 * reads, without the abort signal and its timer; a client that leaves is not noticed.
 */
export function plainDeadline({ timeoutMs, now = Date.now }: DeadlineDeps) {
  return async function plainDeadlineMiddleware(ctx: KeelContext, next: Next): Promise<void> {
    ctx.state.work = { deadline: now() + timeoutMs, reqId: ctx.state.reqId };
    ctx.state.receive = (read) => read();
    await next();
  };
}

export function deadline({ timeoutMs, now = Date.now, settleMs = SETTLE_MS }: DeadlineDeps) {
  return async function deadlineMiddleware(ctx: KeelContext, next: Next): Promise<void> {
    const controller = new AbortController();
    const onClose = () => {
      if (!ctx.res.writableFinished) controller.abort();
    };
    ctx.res.once('close', onClose);
    const work = { deadline: now() + timeoutMs, signal: controller.signal, reqId: ctx.state.reqId };
    ctx.state.work = work;
    let timer: NodeJS.Timeout | undefined;
    let reject!: (err: unknown) => void;
    const expired = new Promise<never>((_, r) => (reject = r));
    // Never unhandled: a request that settled first no longer races it.
    expired.catch(() => undefined);
    const arm = () => {
      work.deadline = now() + timeoutMs;
      timer = setTimeout(() => {
        controller.abort(DEADLINE);
        timer = setTimeout(() => reject(UnavailableError.of('requestDeadline')), settleMs);
        timer.unref();
      }, timeoutMs);
      timer.unref();
    };
    ctx.state.receive = async (read) => {
      if (controller.signal.aborted) return read();
      clearTimeout(timer);
      try {
        return await read();
      } finally {
        if (!controller.signal.aborted) arm();
      }
    };
    arm();
    try {
      await Promise.race([next(), expired]);
    } finally {
      clearTimeout(timer);
    }
  };
}
