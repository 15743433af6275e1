/**
 * Driver error taxonomy. postgres.js surfaces socket errors (ECONNRESET, EPIPE, ...), its own
 * codes (CONNECTION_CLOSED, CONNECT_TIMEOUT, ...) and SQLSTATEs; callers above src/db see only
 * these kinds.
 */

export type DbErrorKind =
  | 'connection' // the connection died or could not be made: safe to retry a whole unit of work
  | 'retryable' // serialization failure / deadlock: the transaction was rolled back, retry it
  | 'lock' // lock_timeout (55P03): it waited for a lock (a migration's, a long transaction's)
  | 'timeout' // statement timeout or cancel
  | 'constraint' // the data broke a rule (class 22 / 23)
  | 'shutdown' // our own pool is ending
  | 'other';

const CONNECTION_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  // The patched driver's pass over several hosts found none of the role target_session_attrs
  // asks for (a standby, mid-failover): a promote makes one, so a retry may find it.
  'TARGET_SESSION_ATTRS',
  'KEEL_STALLED', // our socket factory destroyed a connection that stopped answering
  'KEEL_ATTEMPT_LOST', // the runner gave up on an attempt that had no answer for its limit
  // Out of file descriptors (this process, or the whole machine) for a new connection: a
  // descriptor frees up when a socket closes, so a retry within the budget may get one.
  'EMFILE',
  'ENFILE',
]);

const CONNECTION_SQLSTATES = new Set([
  '57P01', // admin_shutdown (pg_terminate_backend, fast shutdown)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up / shutting down)
  '57P05', // idle_session_timeout
  '25P03', // idle_in_transaction_session_timeout: the server closed the session
  '53300', // too_many_connections: transient, a slot frees up
  '53400', // configuration_limit_exceeded (e.g. per-role connection limit)
  '08P01', // protocol_violation: a proxy (PgBouncer) lost its server connection
  'XX000', // PgBouncer reports lost server connections with internal_error
  // read_only_sql_transaction: the server became a standby (a failover); nothing was written,
  // the socket layer drops that session, and the retry's new connection finds the primary.
  '25006',
]);

export interface DriverErrorLike {
  code?: unknown;
  errno?: unknown;
  severity?: unknown;
  routine?: unknown;
  message?: unknown;
}

/**
 * 0A000 "cached plan must not change result type": a schema change altered what a prepared
 * statement returns. postgres.js drops the statement and retries it alone, which fails inside a
 * transaction (already aborted): the whole transaction is retried, and re-prepares.
 */
function isStalePlan(err: DriverErrorLike): boolean {
  return (
    err.routine === 'RevalidateCachedQuery' ||
    (typeof err.message === 'string' && err.message.includes('cached plan must not change'))
  );
}

export function classify(err: unknown): DbErrorKind {
  const code = (err as DriverErrorLike | null)?.code;
  if (typeof code !== 'string') return 'other';
  if (code === 'CONNECTION_ENDED') return 'shutdown';
  if (CONNECTION_CODES.has(code) || CONNECTION_SQLSTATES.has(code)) return 'connection';
  if (code.startsWith('08')) return 'connection'; // connection_exception class
  if (code === '40001' || code === '40P01') return 'retryable';
  if (code === '0A000' && isStalePlan(err as DriverErrorLike)) return 'retryable';
  if (code === '55P03') return 'lock';
  if (code === '57014') return 'timeout';
  if (code.startsWith('22') || code.startsWith('23')) return 'constraint';
  return 'other';
}

export function isTransient(err: unknown): boolean {
  const kind = classify(err);
  return kind === 'connection' || kind === 'retryable' || kind === 'lock';
}

/** A short, secret-free description of a driver error for logs. */
export function describe(err: unknown): { code: string; kind: DbErrorKind; error: string } {
  const e = err as { code?: unknown; message?: unknown } | null;
  return {
    code: typeof e?.code === 'string' ? e.code : 'unknown',
    kind: classify(err),
    error: typeof e?.message === 'string' ? e.message.slice(0, 300) : String(err).slice(0, 300),
  };
}
