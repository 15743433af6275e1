/**
 * The worst-case time from SIGINT to exit, computed once: the shutdown sequence
 * (src/lifecycle/shutdown.ts, src/worker.ts) bounds each step with these numbers, and the
 * ecosystem derives PM2's kill_timeout from their sum (docs/design/shutdown.md).
 */

/** After the drain, the pool gets what is left of the deadline, at least this... */
export const DB_CLOSE_MIN_MS = 1000;
/** ...and at most this: queries still running belong to abandoned requests. */
export const DB_CLOSE_MAX_MS = 2000;
/** The logger's own flush (winston's `finish`). */
export const LOG_FLUSH_MS = 1000;
/** Then stdout hands on what it holds (under PM2 an async file stream). */
export const STDOUT_DRAIN_MS = 1000;
/** Headroom for a loaded machine between the steps (timers fire late under load). */
const KILL_MARGIN_MS = 1000;

/** The longest a worker takes to exit after the signal, with drain deadline `shutdownTimeoutMs`. */
export function worstShutdownMs(shutdownTimeoutMs: number): number {
  return shutdownTimeoutMs + DB_CLOSE_MAX_MS + LOG_FLUSH_MS + STDOUT_DRAIN_MS;
}

/** PM2's kill_timeout for `web`: its SIGKILL comes after the worst shutdown, never during it. */
export function killTimeoutMs(shutdownTimeoutMs: number): number {
  return worstShutdownMs(shutdownTimeoutMs) + KILL_MARGIN_MS;
}
