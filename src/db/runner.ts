/**
 * Runs units of database work for requests: bounded by the request's deadline, retried on
 * transient failures with exponential backoff and full jitter, gated by the breaker.
 * A unit must be safe to run again: a read, or a transaction that either commits as a whole
 * or not at all and recognises its own earlier commit (the idempotency key).
 */
import type postgres from 'postgres';
import { AppError, ClientGoneError, UnavailableError } from '../errors';
import type { Logger } from '../logger';
import type { DbStats } from '../metrics/db-stats';
import { createAdmission, ShedError, type Admission, type Release } from './admission';
import { cancelOnAbort } from './cancel';
import { createBreaker, unavailable, type Breaker } from './breaker';
import { classify, describe } from './errors';
import { retryDecision } from './retry-decision';
import { noteRole } from './hosts';
import type { Consistency } from './reads/lsn';
import type { SqlHandle } from './sql';

export type Tx = postgres.TransactionSql;
export type Sql = postgres.Sql;

export interface WorkContext {
  /** Epoch ms after which the request answers 503. */
  deadline: number;
  /** Aborted when the client leaves, or with `DEADLINE` as its reason when the deadline comes. */
  signal?: AbortSignal;
  reqId?: string;
  /** Set for API requests: the position a read must reflect, and what the answer reflects. */
  consistency?: Consistency;
}

/** The abort reason the deadline middleware uses: the request is answered 503, not 499. */
export const DEADLINE = Symbol('deadline');

/** What a unit of work may ask of its attempt. */
export interface Attempt {
  /** The deadline or budget has passed, or the request was answered: do not start more work. */
  expired(): boolean;
  /** Called right before COMMIT is sent: from here on a lost answer is `outcome_unknown`. */
  committing(): void;
}

export interface Db {
  read<T>(work: (sql: Sql) => Promise<T>, ctx: WorkContext): Promise<T>;
  transaction<T>(work: (tx: Tx) => Promise<T>, ctx: WorkContext): Promise<T>;
  /** `select 1` within timeoutMs, bypassing retries; concurrent callers share one query. */
  ping(timeoutMs: number): Promise<boolean>;
  breaker: Breaker;
  admission: Admission;
  /** The path to the database is known stalled (see ./path-watch). */
  pathStalled(): boolean;
  /**
   * Readiness: `select 1` answered within timeoutMs. False at once when the path is known
   * stalled, also for a probe already waiting (it need not wait out its timeout).
   */
  ready(timeoutMs: number): Promise<boolean>;
}

export interface DbDeps {
  handle: SqlHandle;
  logger: Logger;
  stats: DbStats;
  budgetMs: number;
  statementTimeoutMs: number;
  /** Units holding a connection at once: the pool's size. */
  slots: number;
  idleInTransactionTimeoutMs?: number;
  /** `lock_timeout` per transaction when it cannot be a session setting (PgBouncer). */
  lockTimeoutMs?: number;
  now?: () => number;
  random?: () => number;
  /** Waits between attempts (tests pass one that moves their clock). */
  sleep?: (ms: number) => Promise<void>;
  /** Benchmarks only (KEEL_BENCH_ABLATE=admission): units skip the admission gate. */
  noAdmission?: boolean;
}

// After a stalled path heals, the dead connections it delivers for this long are its aftermath.
const AFTER_HEAL_MS = 1000;
// How often a waiting readiness probe looks whether the path has been found stalled.
const STALL_POLL_MS = 50;

/** A COMMIT was sent and its result could not be learned within the budget. */
function outcomeUnknown(cause?: unknown): UnavailableError {
  return new UnavailableError('outcome_unknown', undefined, { cause });
}

/** Thrown inside a transaction that reached the deadline before COMMIT: it rolls back. */
class PastDeadline extends Error {}

/**
 * An attempt with no answer for three statement timeouts and a second is lost: retried like a
 * dead connection, and it may no longer commit (docs/design/database-path.md, the attempt limit).
 */
function lostAfterMs(statementTimeoutMs: number): number | null {
  return statementTimeoutMs > 0 ? 3 * statementTimeoutMs + 1000 : null;
}

function abortError(signal: AbortSignal): AppError {
  return signal.reason === DEADLINE ? unavailable() : new ClientGoneError();
}

export function createDb(deps: DbDeps): Db {
  const { handle, logger, stats } = deps;
  const { sql } = handle;
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  const sleep = deps.sleep ?? realSleep;
  let pinging: Promise<boolean> | null = null;

  function ping(timeoutMs: number): Promise<boolean> {
    if (pinging) return pinging;
    const query = sql`select 1`.execute();
    pinging = withTimeout(query, timeoutMs, undefined, unavailable)
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

  const admission = createAdmission({ slots: deps.slots, now });
  const lostMs = lostAfterMs(deps.statementTimeoutMs);
  // Units waiting for a stalled path to heal (see `pathClear`).
  const pathWaiters = new Set<() => void>();
  let healedAt = -Infinity;
  handle.onPathHealed(() => {
    healedAt = now();
    breaker.probeNow();
    for (const wake of [...pathWaiters]) wake();
  });
  /**
   * A dead connection counts toward the breaker's outage unless the path watch already knows
   * better: while the path is stalled it is the stall's doing (the watch holds the work), and
   * right after a heal it is the stall's aftermath (sessions the server ended meanwhile, their
   * FATALs delivered now by a proxy that held them), while the server has just answered.
   */
  function connectionFailed(): void {
    if (handle.pathStalled() || now() - healedAt < AFTER_HEAL_MS) return;
    breaker.failure();
  }

  /**
   * While the path is known stalled no work starts: a unit waits for the heal within its
   * budget (a stall shorter than the budget loses nothing) and is answered 503 when the budget
   * ends first, never having sent a byte. Resolves false at the deadline.
   */
  function pathClear(deadline: number, signal: AbortSignal | undefined): Promise<boolean> {
    if (!handle.pathStalled()) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const finish = (ok: boolean) => {
        pathWaiters.delete(wake);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(ok);
      };
      const wake = () => finish(true);
      const onAbort = () => finish(false);
      const timer = setTimeout(() => finish(!handle.pathStalled()), Math.max(0, deadline - now()));
      timer.unref();
      pathWaiters.add(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async function run<T>(attemptOnce: (a: Attempt) => Promise<T>, ctx: WorkContext): Promise<T> {
    // The database budget ends at the request deadline or budgetMs from now, whichever is first.
    // The wait for a first slot is bounded by the request deadline alone, and the budget starts
    // again once the unit has one (docs/design/database-path.md, waiting is not work).
    let deadline = Math.min(ctx.deadline, now() + deps.budgetMs);
    const expired = () => now() >= deadline || ctx.signal?.aborted === true;
    // Set once a COMMIT was sent and its answer lost; cleared by nothing but a later success,
    // which learns the truth by reading the key row the transaction wrote.
    let unknown = false;
    // How the previous attempt failed (a lock timeout makes a later cut a lock wait).
    let lastKind: ReturnType<typeof classify> | null = null;
    let lastErr: unknown;
    const fail = (err: unknown): unknown =>
      unknown && (err instanceof UnavailableError || !(err instanceof AppError))
        ? outcomeUnknown(err)
        : err;
    for (let attempt = 0; ; attempt++) {
      if (ctx.signal?.aborted) throw fail(abortError(ctx.signal));
      // Waiting for a stalled path is not work either: the first wait is bounded by the request
      // deadline alone, and the budget starts again after it.
      if (!(await pathClear(attempt === 0 ? ctx.deadline : deadline, ctx.signal))) {
        if (ctx.signal?.aborted) throw fail(abortError(ctx.signal));
        stats.shed.stalled += 1;
        throw fail(unavailable());
      }
      if (attempt === 0) deadline = Math.min(ctx.deadline, now() + deps.budgetMs);
      try {
        await breaker.admit(deadline);
      } catch (err) {
        // The budget ran out while the breaker was open: count it like any exhausted budget.
        if (attempt > 0) stats.retryOutcomes.exhausted += 1;
        throw fail(err);
      }
      let release: Release;
      try {
        release = deps.noAdmission
          ? () => undefined
          : await admission.acquire(attempt === 0 ? ctx.deadline : deadline, ctx.signal);
        if (attempt === 0) deadline = Math.min(ctx.deadline, now() + deps.budgetMs);
      } catch (err) {
        if (!(err instanceof ShedError)) throw err;
        // The deadline fires the request's signal too: that is a deadline, not a client gone.
        const byDeadline = err.reason === 'aborted' && ctx.signal?.reason === DEADLINE;
        stats.shed[byDeadline ? 'deadline' : err.reason] += 1;
        if (err.reason === 'aborted' && ctx.signal) throw fail(abortError(ctx.signal));
        throw fail(UnavailableError.of('dbOverloaded'));
      }
      let sent = false;
      let lost = false;
      const work = attemptOnce({
        expired: () => lost || expired(),
        committing: () => (sent = true),
      });
      // The slot is held until the attempt really ends, answered or abandoned. A hold that
      // ended in the database's answer teaches the gate how long a unit takes; one abandoned
      // at the deadline or on a dead connection does not: on a starved box such holds are as
      // long as the budget, and counting them would make the gate refuse everything at once.
      work.then(
        () => release(now() < deadline),
        (err: unknown) => {
          const kind = classify(err);
          release(
            now() < deadline && kind !== 'connection' && kind !== 'shutdown' && kind !== 'timeout',
          );
        },
      );
      try {
        const left = deadline - now();
        const result = await withTimeout(work, Math.min(left, lostMs ?? left), ctx.signal, () => {
          if (now() >= deadline) return unavailable();
          lost = true;
          // Its connection is gone for good: the slot goes back now, not when (if) it settles.
          release(false);
          logger.warn('db attempt lost: no answer, retrying on a fresh connection', {
            reqId: ctx.reqId,
            attempt: attempt + 1,
            waitedMs: lostMs,
          });
          return Object.assign(new Error('no answer from the database within the attempt limit'), {
            code: 'KEEL_ATTEMPT_LOST',
          });
        });
        stats.queries.ok += 1;
        noteRole(stats, null);
        breaker.success();
        if (attempt > 0) {
          stats.retryOutcomes.recovered += 1;
          logger.info('db retry recovered', { reqId: ctx.reqId, attempts: attempt + 1 });
        }
        return result;
      } catch (err) {
        if (err instanceof PastDeadline) throw fail(unavailable());
        if (err instanceof UnavailableError) {
          // The deadline came while the attempt was still running.
          stats.queries.timeout += 1;
          if (attempt > 0) stats.retryOutcomes.exhausted += 1;
          if (sent) unknown = true;
          // After a lock timeout, an attempt the budget cuts short was most likely queued for
          // the same lock again: a lock wait, not an outage.
          else if (lastKind === 'lock') throw fail(lockWaitCut(ctx, attempt, lastErr));
        }
        if (err instanceof AppError) throw fail(err);
        const kind = classify(err);
        lastKind = kind;
        lastErr = err;
        noteRole(stats, err);
        // The connection died under the COMMIT: it may have committed. A retry reads the key row.
        if (sent && (kind === 'connection' || kind === 'shutdown')) unknown = true;
        stats.queries[kind === 'shutdown' ? 'connection' : kind] += 1;
        if (kind === 'connection') connectionFailed();
        const decision = retryDecision(kind, attempt, deadline - now(), random);
        if (decision.retry) {
          stats.retries += 1;
          logger.info('db retry', {
            reqId: ctx.reqId,
            attempt: attempt + 1,
            delayMs: Math.round(decision.delayMs),
            ...describe(err),
          });
          await sleep(decision.delayMs);
          continue;
        }
        if (decision.exhausted) {
          stats.retryOutcomes.exhausted += 1;
          if (kind === 'lock') throw fail(lockWaitCut(ctx, attempt, err));
          logger.warn('db retry budget exhausted', {
            reqId: ctx.reqId,
            attempts: attempt + 1,
            ...describe(err),
          });
          throw fail(unavailable(err));
        }
        if (kind === 'shutdown') {
          // Our own pool has closed: this worker is going away, the client should retry elsewhere.
          if (unknown) throw outcomeUnknown(err);
          throw new UnavailableError('shutting_down', undefined, { cause: err });
        }
        if (kind === 'timeout') throw fail(unavailable(err));
        throw fail(err);
      }
    }
  }

  /** Waiting for a lock is no outage: the log and the metric say which it was. */
  function lockWaitCut(ctx: WorkContext, attempt: number, err: unknown): UnavailableError {
    stats.lockWaitCuts += 1;
    logger.warn('db retry budget exhausted', {
      reqId: ctx.reqId,
      attempts: attempt + 1,
      reason: 'lock_wait',
      ...describe(err),
    });
    return UnavailableError.of('dbLockWait', err);
  }

  function withTimeout<T>(
    work: Promise<T>,
    ms: number,
    signal: AbortSignal | undefined,
    onTimeout: () => Error,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const timer = setTimeout(() => finish(() => reject(onTimeout())), Math.max(0, ms));
      timer.unref();
      const onAbort = () => finish(() => reject(signal ? abortError(signal) : unavailable()));
      signal?.addEventListener('abort', onAbort, { once: true });
      work.then(
        (v) => finish(() => resolve(v)),
        (e) => finish(() => reject(e)),
      );
    });
  }

  // Through PgBouncer (transaction mode) session settings cannot go in the startup packet.
  const localSettings = handle.perTransactionTimeout
    ? [
        deps.statementTimeoutMs &&
          `set local statement_timeout = ${Math.floor(deps.statementTimeoutMs)}`,
        deps.lockTimeoutMs && `set local lock_timeout = ${Math.floor(deps.lockTimeoutMs)}`,
        deps.idleInTransactionTimeoutMs &&
          `set local idle_in_transaction_session_timeout = ${Math.floor(deps.idleInTransactionTimeoutMs)}`,
      ].filter((q): q is string => typeof q === 'string')
    : [];
  const setLocal = async (tx: Tx) => {
    for (const q of localSettings) await tx.unsafe(q);
  };

  return {
    ping,
    breaker,
    admission,
    pathStalled: () => handle.pathStalled(),
    ready(timeoutMs) {
      if (handle.pathStalled()) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        const watch = setInterval(() => {
          if (handle.pathStalled()) finish(false);
        }, STALL_POLL_MS);
        watch.unref();
        const finish = (ok: boolean) => {
          clearInterval(watch);
          resolve(ok);
        };
        void ping(timeoutMs).then(finish);
      });
    },
    read(work, ctx) {
      if (localSettings.length > 0) {
        return run(
          () =>
            sql.begin(async (tx) => {
              await setLocal(tx);
              return work(tx as unknown as Sql);
            }) as Promise<Awaited<ReturnType<typeof work>>>,
          ctx,
        );
      }
      return run(() => cancelOnAbort(work(sql), ctx.signal, undefined, handle.asCancel), ctx);
    },
    transaction(work, ctx) {
      return run(
        (attempt) =>
          sql.begin(async (tx) => {
            await setLocal(tx);
            if (attempt.expired()) throw new PastDeadline();
            const result = await work(tx);
            // The request may have been answered meanwhile: then this rolls back, never commits.
            if (attempt.expired()) throw new PastDeadline();
            attempt.committing();
            return result;
          }) as Promise<Awaited<ReturnType<typeof work>>>,
        ctx,
      );
    },
  };
}

function realSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
