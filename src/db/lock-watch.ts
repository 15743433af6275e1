/**
 * What a migration waits for: while its statement waits for a lock, a second connection asks
 * `pg_blocking_pids` who holds it, and one line every few seconds names them (pid,
 * application_name, state, how long, the query's first words), so a deploy log says why.
 */
import type postgres from 'postgres';
import type { Logger } from '../logger';

export interface Blocker {
  pid: number;
  application: string;
  state: string;
  /** How long its transaction (or, outside one, its query) has been running. */
  forMs: number;
  /** The first words of its current or last query. */
  query: string;
}

// Often enough to see a wait that a 500 ms lock_timeout cuts short; one cheap catalog query.
const POLL_MS = 150;
// One line every few seconds: a deploy log that says why without drowning in it.
const LOG_EVERY_MS = 3000;

const COLUMNS = `
  a.pid,
  coalesce(nullif(a.application_name, ''), a.backend_type, '') as application,
  coalesce(a.state, '') as state,
  coalesce(floor(extract(epoch from now() - coalesce(a.xact_start, a.query_start)) * 1000), 0)::int
    as "forMs",
  left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 60) as query`;

/** The sessions `pid` waits for (empty when it waits for nothing). */
export function blockersOf(sql: postgres.Sql, pid: number): Promise<Blocker[]> {
  return sql.unsafe<Blocker[]>(
    `select ${COLUMNS}
       from unnest(pg_blocking_pids($1)) as b(pid) join pg_stat_activity a using (pid)`,
    [pid],
  );
}

/** The sessions holding an advisory lock on `key` (another migrator), other than our own. */
export function advisoryHolders(sql: postgres.Sql, key: number): Promise<Blocker[]> {
  return sql.unsafe<Blocker[]>(
    `select ${COLUMNS}
       from pg_locks l join pg_stat_activity a using (pid)
      where l.locktype = 'advisory' and l.granted and l.objid = $1 and l.objsubid = 1
        and l.pid <> pg_backend_pid()`,
    [key],
  );
}

export interface LockWatch {
  /** Watches what `find` returns while `work` runs; logs with `fields`, then returns `work`. */
  during<T>(work: Promise<T>, find: () => Promise<Blocker[]>, fields: object): Promise<T>;
  /** The blockers seen last (kept across attempts, for the final message). */
  last(): Blocker[];
  /** Starts the "every few seconds" clock again (a new migration). */
  reset(): void;
  /** After a lock timeout: the line, if one is due, with the blockers seen last. */
  timedOut(fields: object): void;
}

export function createLockWatch(deps: {
  log: Logger;
  now?: () => number;
  pollMs?: number;
  logEveryMs?: number;
}): LockWatch {
  const now = deps.now ?? Date.now;
  const pollMs = deps.pollMs ?? POLL_MS;
  const every = deps.logEveryMs ?? LOG_EVERY_MS;
  let seen: Blocker[] = [];
  let loggedAt = -Infinity;
  let since = now();

  function report(fields: object): void {
    if (seen.length === 0 || now() - loggedAt < every) return;
    loggedAt = now();
    deps.log.warn('migration waits for a lock', {
      ...fields,
      waitingMs: now() - since,
      blockers: seen.map(describeBlocker),
    });
  }

  return {
    last: () => seen,
    timedOut: report,
    reset() {
      seen = [];
      loggedAt = -Infinity;
      since = now();
    },
    async during(work, find, fields) {
      let done = false;
      const watching = (async () => {
        while (!done) {
          await new Promise((r) => setTimeout(r, pollMs).unref());
          if (done) break;
          const found = await find().catch(() => []);
          if (found.length === 0 || done) continue;
          seen = found;
          report(fields);
        }
      })();
      try {
        return await work;
      } finally {
        done = true;
        await watching;
      }
    },
  };
}

/** One blocker in a line a deploy log reads: `pid 123 keel:report (idle in transaction, 4.2 s): select ...`. */
export function describeBlocker(b: Blocker): string {
  const app = b.application || 'unnamed';
  return `pid ${b.pid} ${app} (${b.state || 'unknown'}, ${(b.forMs / 1000).toFixed(1)} s): ${b.query}`;
}
