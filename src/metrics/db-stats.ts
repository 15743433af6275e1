/**
 * Per-worker database counters, written by the socket layer, retry loop and breaker, read by
 * the metrics exporters. Plain numbers: cheap enough for the hot path.
 */

export const CLOSE_REASONS = [
  'idle_timeout',
  'max_lifetime',
  'server_closed',
  'network_error',
  'stalled',
  'shutdown',
  // The server ends the short-lived socket of a cancel request (a client left mid-query).
  'cancel_request',
  // A query was refused 25006 (the server is a standby now): the session is dropped.
  'read_only',
] as const;
export type CloseReason = (typeof CLOSE_REASONS)[number];

/** How a pool connect attempt ended: the server took it, or it failed one of three ways. */
export const ATTEMPT_OUTCOMES = ['opened', 'refused', 'silent', 'too_many_clients'] as const;
export type AttemptOutcome = (typeof ATTEMPT_OUTCOMES)[number];

export const QUERY_OUTCOMES = [
  'ok',
  'connection',
  'retryable',
  // A lock timeout (55P03): the statement waited for a lock held by a migration or a long transaction.
  'lock',
  'timeout',
  'constraint',
  'other',
] as const;
export type QueryOutcome = (typeof QUERY_OUTCOMES)[number];

export const RETRY_OUTCOMES = ['recovered', 'exhausted'] as const;
export type RetryOutcome = (typeof RETRY_OUTCOMES)[number];

// stalled: the path to the database was known stalled for the unit's whole budget.
export const SHED_REASONS = ['overload', 'full', 'deadline', 'aborted', 'stalled'] as const;
export type ShedReason = (typeof SHED_REASONS)[number];

/** The roles a worker sees its database take (docs/failover.md). */
export const DB_ROLES = ['primary', 'standby', 'read_only'] as const;
export type DbRole = (typeof DB_ROLES)[number];

export interface DbStats {
  /** Sockets to the database, connecting or connected; always busy + idle. */
  open: number;
  /** Connections between a request written and ReadyForQuery outside a transaction. */
  busy: number;
  /** Connections waiting for work (TLS connections, whose bytes we cannot read, count here). */
  idle: number;
  opened: number;
  /** Pool connect attempts by how they ended (./connect-gate). */
  connectAttempts: Record<AttemptOutcome, number>;
  /** Pool connect attempts in progress now, and the most seen at once. */
  connecting: number;
  connectingMax: number;
  closed: Record<CloseReason, number>;
  queries: Record<QueryOutcome, number>;
  retries: number;
  /** Units refused before any work: no slot within the deadline (or none expected in time). */
  shed: Record<ShedReason, number>;
  retryOutcomes: Record<RetryOutcome, number>;
  /** Units answered 503 because their last attempts kept waiting for locks past the budget. */
  lockWaitCuts: number;
  breakerState: 'closed' | 'open';
  breakerOpenings: number;
  /** The role the last unit of work met ('unknown' until the first answer). */
  role: DbRole | 'unknown';
  /** Times that role changed, by the role changed to (a failover: primary → standby → primary). */
  roleChanges: Record<DbRole, number>;
}

function zeroes<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
}

export function createDbStats(): DbStats {
  return {
    open: 0,
    busy: 0,
    idle: 0,
    opened: 0,
    connectAttempts: zeroes(ATTEMPT_OUTCOMES),
    connecting: 0,
    connectingMax: 0,
    closed: zeroes(CLOSE_REASONS),
    queries: zeroes(QUERY_OUTCOMES),
    retries: 0,
    shed: zeroes(SHED_REASONS),
    retryOutcomes: zeroes(RETRY_OUTCOMES),
    lockWaitCuts: 0,
    breakerState: 'closed',
    breakerOpenings: 0,
    role: 'unknown',
    roleChanges: zeroes(DB_ROLES),
  };
}
