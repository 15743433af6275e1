/**
 * Why a database socket closed, inferred from what the socket layer saw of it. Pure: the
 * socket factory (./socket) passes what it knows and the clock's reading.
 */
import type { CloseReason } from '../metrics/db-stats';

export interface ClosedSocket {
  /** The short-lived socket of a cancel request. */
  cancel: boolean;
  /** A query was refused with 25006: the server is a standby now. */
  readOnly: boolean;
  /** Destroyed by the stall watch. */
  stalled: boolean;
  /** Encrypted: the bytes could not be read, activity comes from byte counters. */
  tls: boolean;
  /** We called `end()` before the peer's FIN. */
  closedByUs: boolean;
  peerEnded: boolean;
  /** The server sent a FATAL error. */
  fatal: boolean;
  openedAt: number;
  lastActivity: number;
  /** TLS only: the last change seen was no bigger than a goodbye; then this is the activity before. */
  goodbyeSized: boolean;
  activityBefore: number;
}

export interface CloseContext {
  now: number;
  hadError: boolean;
  shuttingDown: boolean;
  /** Lower bound of the per-connection idle timeout (s), or null when there is none. */
  idleTimeoutMinS: number | null;
  /** Lower bound of the per-connection lifetime (s); only TLS closes need it. */
  maxLifetimeMinS: number | null;
}

// The slack the watchdog's 250 ms tick once gave TLS idle-close inference; kept, since TLS
// activity is still only seen at a tick (see below).
const TLS_ACTIVITY_SLACK_MS = 250;

export function closeReason(c: ClosedSocket, ctx: CloseContext): CloseReason {
  if (c.cancel) return 'cancel_request';
  if (c.readOnly) return 'read_only';
  if (c.stalled) return 'stalled';
  if (ctx.shuttingDown) return 'shutdown';
  // TLS activity is seen only at a tick (and ticks run late on a busy box), so a TLS
  // connection may have been idle longer than its byte counters say. And a tick that fell
  // between the close's first bytes and the close itself saw the goodbye, not a query:
  // the connection was idle since the activity before it.
  const lastActivity = c.tls && c.goodbyeSized ? c.activityBefore : c.lastActivity;
  const idleS = (ctx.now - lastActivity + (c.tls ? TLS_ACTIVITY_SLACK_MS : 0)) / 1000;
  const idleTimedOut = ctx.idleTimeoutMinS != null && idleS >= ctx.idleTimeoutMinS * 0.95;
  if (c.tls) {
    // Encrypted: the FIN and our own `end()` are invisible, so infer from idleness and age.
    if (ctx.hadError) return 'network_error';
    if (idleTimedOut) return 'idle_timeout';
    const ageS = (ctx.now - c.openedAt) / 1000;
    if (ctx.maxLifetimeMinS != null && ageS >= ctx.maxLifetimeMinS * 0.99) return 'max_lifetime';
    return 'server_closed';
  }
  // The driver ends a connection only for its idle timer, its lifetime or `sql.end()`; an
  // idle connection past the idle timeout's lower bound was closed by the idle timer.
  if (c.closedByUs) return idleTimedOut ? 'idle_timeout' : 'max_lifetime';
  // A FIN from the far end (the server, or a proxy's cut), or the server's FATAL error
  // (pg_terminate_backend, a restart) even when our next write then met a reset.
  if (c.peerEnded || c.fatal) return 'server_closed';
  // A reset, a refused or unreachable connect, or a connect the driver gave up on.
  return 'network_error';
}
