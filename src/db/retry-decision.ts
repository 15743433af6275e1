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
 * A dead connection and a retryable server error (serialization failure, deadlock, a standby)
 * are transient; the next try waits a full-jitter backoff if it still fits in `leftMs`.
 */
export function retryDecision(
  kind: DbErrorKind,
  attempt: number,
  leftMs: number,
  random: () => number,
): RetryDecision {
  if (kind !== 'connection' && kind !== 'retryable') return { retry: false, exhausted: false };
  const delayMs = random() * Math.min(CAP_MS, BASE_MS * 2 ** attempt);
  if (delayMs < leftMs) return { retry: true, delayMs };
  return { retry: false, exhausted: true };
}
