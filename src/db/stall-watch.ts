/**
 * When a silent database connection is given up (docs/design/database-path.md, "A stall is not
 * a storm"). Pure: the socket factory's watchdog asks it on every tick.
 *
 * A connection that has heard nothing for its limit is destroyed only when the path is known to
 * work without it: a probe opened after it went silent was answered. While the path is known
 * stalled nothing is destroyed: a replacement would wait in the same hole, and every socket
 * destroyed on our side may still be held open by a platform proxy, to reach the server with
 * all the others when the path heals. A connection that went silent before the path healed
 * (its bytes went into the stall) and is past its limit gets HEAL_GRACE_MS after the heal: a
 * proxy that held its bytes delivers them then, and the server answers them; a path that lost
 * them (a blackhole) never answers, and postgres.js pipelines new queries behind the lost one,
 * so it must go soon. (Its whole limit again from the heal kept such a connection, and the
 * requests queued on it, for the statement timeout + 1 s after the heal: seen in CI as a 503
 * 1.5 s after a blackhole healed.) A held query that runs longer than the grace after a stall
 * that outlasted its limit is cut and retried within its request's budget.
 */

export interface SilentConnection {
  /** The server has answered this socket at least once (its startup is done or under way). */
  answered: boolean;
  /** Epoch ms of the first unanswered write, or null when nothing is awaited. */
  awaitingSince: number | null;
  lastRead: number;
}

export interface PathView {
  stalledSince(): number | null;
  healedAt(): number;
  answeredSince(t: number): boolean;
}

// A server answers a startup message at once (no query runs yet): a second is generous.
export const STARTUP_STALL_MS = 1000;
// After a heal, how long a connection that went silent before it (and is past its limit) has to
// be answered: held bytes are delivered at the heal.
export const HEAL_GRACE_MS = 1000;

export function shouldDestroy(
  c: SilentConnection,
  path: PathView,
  t: number,
  stallMs: number,
): boolean {
  if (c.awaitingSince === null) return false;
  const silentSince = Math.max(c.awaitingSince, c.lastRead);
  const limit = c.answered ? stallMs : Math.min(stallMs, STARTUP_STALL_MS);
  if (t - silentSince <= limit) return false;
  if (path.stalledSince() !== null) return false;
  // Silent since before the heal, and past its limit: its bytes went into the stall. A proxy
  // that held them has delivered them at the heal, and the server answers within the grace; a
  // path that lost them never will.
  const healed = path.healedAt();
  if (healed > silentSince) return t - healed > Math.min(limit, HEAL_GRACE_MS);
  return path.answeredSince(silentSince);
}
