import type { Next } from 'koa';
import type { LineWriter, Logger } from '../../logger';
import type { KeelContext } from '../context';

/** One line per request, written when the response is done (or abandoned). */
export function accessLog({
  logger,
  line = (msg, fields) => logger.info(msg, fields),
  onDone,
  lines = true,
}: {
  logger: Logger;
  /** Writes the line (the worker's own: `createLineWriter`, the same line as `logger.info`). */
  line?: LineWriter;
  onDone?: (ctx: KeelContext, seconds: number) => void;
  /** Benchmarks only (KEEL_BENCH_ABLATE=access-log): false times requests but logs nothing. */
  lines?: boolean;
}) {
  return async function accessLogMiddleware(ctx: KeelContext, next: Next): Promise<void> {
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = (ctx as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      onDone?.(ctx, seconds);
      if (lines)
        line('request', {
          reqId: ctx.state.reqId,
          method: ctx.method,
          route,
          status: ctx.status,
          durationMs: Math.round(seconds * 10000) / 10,
        });
    }
  };
}
