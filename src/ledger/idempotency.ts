/**
 * Keeps the idempotency table bounded. Generated keys (`gen:<uuid>`, see ./idempotency-key)
 * serve only one request's own retries and go after GENERATED_KEY_RETENTION_MINUTES; client
 * keys are kept CLIENT_KEY_RETENTION_HOURS (the contract promises 24). Every worker runs the
 * timer; each batch is a short transaction that first takes a transaction-scoped advisory lock
 * (so one worker sweeps at a time, whichever holds it, and it works through PgBouncer too),
 * skips rows a transfer holds, and the sweep repeats batches until the backlog is gone.
 */
import type { Db } from '../db/runner';
import type { Logger } from '../logger';

export const CLIENT_KEY_RETENTION_HOURS = 48;
// A client told `keel-gen-<uuid>` retries within seconds (its retry budget); 10 minutes is
// far more than any retry and keeps the table near rate x 10 min rows.
export const GENERATED_KEY_RETENTION_MINUTES = 10;
// An arbitrary constant that names "keel idempotency sweep" among advisory locks.
const SWEEP_LOCK = 7_304_812;

export interface KeyJanitor {
  /** Deletes expired keys batch by batch until none is left (or another worker holds the
   * lock); returns how many this call deleted. */
  sweep(): Promise<number>;
  start(): void;
  stop(): void;
}

export interface KeyJanitorDeps {
  db: Db;
  logger: Logger;
  intervalMs?: number;
  batch?: number;
}

export function createKeyJanitor(deps: KeyJanitorDeps): KeyJanitor {
  // Once a minute, batches of 2000: each batch is a few milliseconds of row locks, and a
  // minute's backlog at 1,500 keys/s is 45 batches.
  const intervalMs = deps.intervalMs ?? 60_000;
  const batch = deps.batch ?? 2000;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<number> | null = null;
  let stopped = false;

  /** One batch; null when another worker holds the sweep lock. */
  function deleteBatch(): Promise<number | null> {
    return deps.db.transaction(
      async (tx) => {
        const [lock] = await tx<{ got: boolean }[]>`
          select pg_try_advisory_xact_lock(${SWEEP_LOCK}) as got`;
        if (!lock?.got) return null;
        const generated = await tx`
          delete from idempotency_keys where key in (
            select key from idempotency_keys
            where key like 'gen:%'
              and created_at < now() - make_interval(mins => ${GENERATED_KEY_RETENTION_MINUTES})
            limit ${batch} for update skip locked)
          returning 1`;
        const room = batch - generated.length;
        if (room <= 0) return generated.length;
        const client = await tx`
          delete from idempotency_keys where key in (
            select key from idempotency_keys
            where created_at < now() - make_interval(hours => ${CLIENT_KEY_RETENTION_HOURS})
            limit ${room} for update skip locked)
          returning 1`;
        return generated.length + client.length;
      },
      { deadline: Date.now() + 10_000 },
    );
  }

  async function sweepAll(): Promise<number> {
    let total = 0;
    while (!stopped) {
      const n = await deleteBatch();
      if (n === null) break;
      total += n;
      if (n < batch) break;
      // Let requests run between batches.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (total) deps.logger.info('expired idempotency keys deleted', { count: total });
    return total;
  }

  function sweep(): Promise<number> {
    // One sweep at a time per worker: a slow one is not stacked on by the next tick.
    running ??= sweepAll().finally(() => {
      running = null;
    });
    return running;
  }

  return {
    sweep,
    start() {
      if (timer) return;
      stopped = false;
      timer = setInterval(() => {
        sweep().catch((err: unknown) =>
          deps.logger.warn('idempotency key sweep failed', {
            err: err instanceof Error ? err.message : String(err),
          }),
        );
      }, intervalMs);
      timer.unref();
    },
    stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}
