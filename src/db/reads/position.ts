/**
 * A server's WAL position, read by a query sent after the caller asked: on a primary where it
 * inserts (pg_current_wal_insert_lsn: every commit it has acknowledged is at or before it), on a
 * standby what it has replayed (pg_last_wal_replay_lsn: every commit before it is visible).
 * Callers that ask while a read is in flight share the next one: one query at a time per server,
 * however many requests wait on it.
 */
import type postgres from 'postgres';
import { normalizeInsertLsn, parseLsn } from './lsn';

export interface ServerPosition {
  /** In recovery: a standby (false: a primary, or a standby that was promoted). */
  recovery: boolean;
  lsn: bigint;
}

export interface PositionReader {
  /** The position read by a query sent after this call; rejects after `timeoutMs`. */
  after(): Promise<ServerPosition>;
}

export function createPositionReader(deps: {
  sql: postgres.Sql;
  timeoutMs: number;
}): PositionReader {
  const { sql, timeoutMs } = deps;
  let next: Promise<ServerPosition> | null = null;
  let tail: Promise<unknown> = Promise.resolve();

  async function read(): Promise<ServerPosition> {
    let timer: NodeJS.Timeout | undefined;
    const query = sql<{ recovery: boolean; lsn: string }[]>`
      select pg_is_in_recovery() as recovery,
             (case when pg_is_in_recovery() then pg_last_wal_replay_lsn()
                   else pg_current_wal_insert_lsn() end)::text as lsn`.execute();
    try {
      const [row] = await Promise.race([
        query,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(Object.assign(new Error('no position in time'), { code: 'TIMEOUT' })),
            timeoutMs,
          );
          timer.unref();
        }),
      ]);
      if (!row?.lsn) throw new Error('the server reports no WAL position');
      const lsn = parseLsn(row.lsn);
      return { recovery: row.recovery, lsn: row.recovery ? lsn : normalizeInsertLsn(lsn) };
    } finally {
      clearTimeout(timer);
      query.catch(() => undefined);
    }
  }

  return {
    after() {
      if (next) return next;
      const mine: Promise<ServerPosition> = tail.then(() => {
        // Sent now: later callers need a query of their own.
        if (next === mine) next = null;
        return read();
      });
      next = mine;
      tail = mine.catch(() => undefined);
      return mine;
    },
  };
}
