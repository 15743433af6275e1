/**
 * Runs units of database work for requests: bounded by the request's deadline, retried on
 * transient failures with exponential backoff and full jitter, gated by the breaker.
 * A unit must be safe to run again: a read, or a transaction that either commits as a whole
 * or not at all and recognises its own earlier commit (the idempotency key).
 */
import type postgres from 'postgres';
import { AppError, UnavailableError } from '../errors';
import type { Logger } from '../logger';
import type { DbStats } from '../metrics/db-stats';
import { cancelOnAbort } from './cancel';
import { createBreaker, unavailable, type Breaker } from './breaker';
import { classify, describe } from './errors';
import type { SqlHandle } from './sql';

export type Tx = postgres.TransactionSql;
export type Sql = postgres.Sql;

export interface WorkContext {
  /** Epoch ms after which the request answers 503. */
  deadline: number;
  signal?: AbortSignal;
  reqId?: string;
}

export interface Db {
  read<T>(work: (sql: Sql) => Promise<T>, ctx: WorkContext): Promise<T>;
  transaction<T>(work: (tx: Tx) => Promise<T>, ctx: WorkContext): Promise<T>;
  /** `select 1` within timeoutMs, bypassing retries; concurrent callers share one query. */
  ping(timeoutMs: number): Promise<boolean>;
  breaker: Breaker;
}

export interface DbDeps {
  handle: SqlHandle;
  logger: Logger;
  stats: DbStats;
  budgetMs: number;
  statementTimeoutMs: number;
  now?: () => number;
  random?: () => number;
}

export class ClientGoneError extends AppError {
  constructor() {
    super(499, 'client_closed_request', 'the client went away');
  }
}

export function createDb(deps: DbDeps): Db {
  const { handle, logger, stats } = deps;
  const { sql } = handle;
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  let pinging: Promise<boolean> | null = null;

  function ping(timeoutMs: number): Promise<boolean> {
    if (pinging) return pinging;
    const query = sql`select 1`.execute();
    pinging = withTimeout(query, timeoutMs)
      .then(() => true)
      .catch(() => false)
      .finally(() => {
        pinging = null;
      });
    return pinging;
  }

  const breaker = createBreaker({
    logger: logger.child({ module: 'db.breaker' }),
    stats,
    probe: async () => {
      if (!(await ping(1000))) throw new Error('probe failed');
    },
  });

  async function run<T>(attemptOnce: () => Promise<T>, ctx: WorkContext): Promise<T> {
    // The database budget ends at the request deadline or budgetMs from now, whichever is first.
    const deadline = Math.min(ctx.deadline, now() + deps.budgetMs);
    for (let attempt = 0; ; attempt++) {
      if (ctx.signal?.aborted) throw new ClientGoneError();
      try {
        await breaker.admit(deadline);
      } catch (err) {
        // The budget ran out while the breaker was open: count it like any exhausted budget.
        if (attempt > 0) stats.retryOutcomes.exhausted += 1;
        throw err;
      }
      try {
        const result = await withTimeout(attemptOnce(), deadline - now(), ctx.signal);
        stats.queries.ok += 1;
        breaker.success();
        if (attempt > 0) {
          stats.retryOutcomes.recovered += 1;
          logger.info('db retry recovered', { reqId: ctx.reqId, attempts: attempt + 1 });
        }
        return result;
      } catch (err) {
        if (err instanceof UnavailableError) {
          // The deadline came while the attempt was still running.
          stats.queries.timeout += 1;
          if (attempt > 0) stats.retryOutcomes.exhausted += 1;
        }
        if (err instanceof AppError) throw err;
        const kind = classify(err);
        stats.queries[kind === 'shutdown' ? 'connection' : kind] += 1;
        if (kind === 'connection') breaker.failure();
        if (kind === 'connection' || kind === 'retryable') {
          // Full jitter: uniform in [0, min(1 s, 20 ms * 2^attempt)].
          const delay = random() * Math.min(1000, 20 * 2 ** attempt);
          if (now() + delay < deadline) {
            stats.retries += 1;
            logger.info('db retry', {
              reqId: ctx.reqId,
              attempt: attempt + 1,
              delayMs: Math.round(delay),
              ...describe(err),
            });
            await sleep(delay);
            continue;
          }
          stats.retryOutcomes.exhausted += 1;
          logger.warn('db retry budget exhausted', {
            reqId: ctx.reqId,
            attempts: attempt + 1,
            ...describe(err),
          });
          throw unavailable(err);
        }
        if (kind === 'shutdown') {
          // Our own pool has closed: this worker is going away, the client should retry elsewhere.
          throw new UnavailableError(
            'shutting_down',
            'this worker is shutting down, retry',
            1,
            err,
          );
        }
        if (kind === 'timeout') throw unavailable(err);
        throw err;
      }
    }
  }

  function withTimeout<T>(work: Promise<T>, ms: number, signal?: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const timer = setTimeout(() => finish(() => reject(unavailable())), Math.max(0, ms));
      timer.unref();
      const onAbort = () => finish(() => reject(new ClientGoneError()));
      signal?.addEventListener('abort', onAbort, { once: true });
      work.then(
        (v) => finish(() => resolve(v)),
        (e) => finish(() => reject(e)),
      );
    });
  }

  const setTimeoutSql = (tx: Tx) =>
    handle.perTransactionTimeout && deps.statementTimeoutMs
      ? tx.unsafe(`set local statement_timeout = ${Math.floor(deps.statementTimeoutMs)}`)
      : null;

  return {
    ping,
    breaker,
    read(work, ctx) {
      if (handle.perTransactionTimeout && deps.statementTimeoutMs) {
        return run(
          () =>
            sql.begin(async (tx) => {
              await setTimeoutSql(tx);
              return work(tx as unknown as Sql);
            }) as Promise<Awaited<ReturnType<typeof work>>>,
          ctx,
        );
      }
      return run(() => cancelOnAbort(work(sql), ctx.signal), ctx);
    },
    transaction(work, ctx) {
      return run(
        () =>
          sql.begin(async (tx) => {
            await setTimeoutSql(tx);
            if (ctx.signal?.aborted) throw new ClientGoneError();
            return work(tx);
          }) as Promise<Awaited<ReturnType<typeof work>>>,
        ctx,
      );
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
