/** Where the idle probe looks: a geometric ladder up to --max, then bisection of the bracket. */
import type { IdleSample } from './idle-types';

// The ladder starts at 1/64 of --max (14 s for 900 s) and never below half a second.
const LADDER_SPAN = 64;
const LADDER_FLOOR_MS = 500;

export function ladder(maxMs: number, k: number): number[] {
  const lo = Math.min(maxMs, Math.max(LADDER_FLOOR_MS, maxMs / LADDER_SPAN));
  if (k <= 1) return [maxMs];
  const ratio = (maxMs / lo) ** (1 / (k - 1));
  return Array.from({ length: k }, (_, i) => Math.round(lo * ratio ** i));
}

/** k idle times spread evenly strictly inside (lo, hi). */
export function bisect(lo: number, hi: number, k: number): number[] {
  return Array.from({ length: k }, (_, i) => Math.round(lo + ((hi - lo) * (i + 1)) / (k + 1)));
}

/** Narrow enough: a quarter second, or 2 % of the cutoff (6 s at 300 s). */
export function tolerance(hiMs: number): number {
  return Math.max(250, Math.round(hiMs * 0.02));
}

/**
 * [longest idle survived, shortest idle at which a connection died], from the samples without
 * keepalive. A death is placed where it was seen: at the cut itself for a FIN or a reset.
 */
export function bracket(samples: IdleSample[]): { lo: number; hi: number | null } {
  let lo = 0;
  let hi: number | null = null;
  for (const s of samples) {
    if (s.keepAliveS !== null) continue;
    if (s.alive) lo = Math.max(lo, s.idleMs);
    else if (s.diedAtMs !== null) hi = hi === null ? s.diedAtMs : Math.min(hi, s.diedAtMs);
  }
  // A proxy that sweeps on a timer cuts a little late: a survivor past the first death
  // widens the bracket instead of inverting it.
  if (hi !== null && lo >= hi) return { lo: Math.min(lo, hi), hi: Math.max(lo, hi) };
  return { lo, hi };
}
