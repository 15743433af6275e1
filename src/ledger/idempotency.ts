/**
 * Keeps the idempotency table from growing forever: keys older than the retention window are
 * deleted in small batches. The contract promises at least 24 hours; we keep 48.
 */
import type { Db } from '../db/runner';
import type { Logger } from '../logger';

export const KEY_RETENTION_HOURS = 48;

export interface KeyJanitor {
  /** Deletes one batch; returns how many keys went. */
  sweep(): Promise<number>;
  start(): void;
  stop(): void;
}

export function createKeyJanitor(deps: {
  db: Db;
  logger: Logger;
  intervalMs?: number;
  batch?: number;
}): KeyJanitor {
  // Every 10 minutes, 5000 at most: small transactions that never hold locks for long.
  const intervalMs = deps.intervalMs ?? 600_000;
  const batch = deps.batch ?? 5000;
  let timer: NodeJS.Timeout | null = null;

  async function sweep(): Promise<number> {
    const rows = await deps.db.read(
      (sql) => sql`
        delete from idempotency_keys where key in (
          select key from idempotency_keys
          where created_at < now() - make_interval(hours => ${KEY_RETENTION_HOURS})
          limit ${batch})
        returning 1`,
      { deadline: Date.now() + 30_000 },
    );
    if (rows.length) deps.logger.info('expired idempotency keys deleted', { count: rows.length });
    return rows.length;
  }

  return {
    sweep,
    start() {
      if (timer) return;
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
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}
