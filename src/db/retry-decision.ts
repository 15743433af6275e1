/**
 * Whether a failed attempt is tried again, and after how long. Pure: the runner (./runner)
 * passes what it knows, and its unit test checks the schedule without a clock.
 */
import type { DbErrorKind } from './errors';

export type RetryDecision =
  /** Try again after `delayMs`. */
  | { retry: true; delayMs: number }
  /** Give up: `exhausted` when the failure was transient but the budget has no room left. */
  | { retry: false; exhausted: boolean };

// The backoff's cap and base: full jitter, uniform in [0, min(1 s, 20 ms * 2^attempt)].
const CAP_MS = 1000;
const BASE_MS = 20;

/**
 * A dead connection, a retryable server error (serialization failure, deadlock, a standby, a
 * plan a schema change made stale) and a lock timeout are transient; the next try waits a full-jitter backoff if it still fits in `leftMs`.
 */
export function retryDecision(
  kind: DbErrorKind,
  attempt: number,
  leftMs: number,
  random: () => number,
): RetryDecision {
  if (kind !== 'connection' && kind !== 'retryable' && kind !== 'lock') {
    return { retry: false, exhausted: false };
  }
  const delayMs = random() * Math.min(CAP_MS, BASE_MS * 2 ** attempt);
  if (delayMs < leftMs) return { retry: true, delayMs };
  return { retry: false, exhausted: true };
}

/**
 * A migration's wait after a lock timeout (55P03), for its `attempt` (0-based): equal jitter
 * over a doubling step that starts at the lock timeout and is capped at 5 s. Each attempt holds
 * the queue behind it for up to one lock timeout; the pause after it lets that queue drain.
 */
export function migrationBackoff(
  attempt: number,
  lockTimeoutMs: number,
  random: () => number,
): number {
  const step = Math.min(5000, Math.max(lockTimeoutMs, 50) * 2 ** Math.min(attempt, 10));
  return step / 2 + (random() * step) / 2;
}
