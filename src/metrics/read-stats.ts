/** Counters of where reads went (src/db/reads), read by the metrics exporter. */

/** standby: served by a standby; primary: by the primary as configured (no standby, or a token
 * that names the primary); fallback: standbys are configured but none could serve it. */
export const READ_TARGETS = ['standby', 'primary', 'fallback'] as const;
export type ReadTarget = (typeof READ_TARGETS)[number];

/** A wait for a standby to replay a token's position: reached, or given up (read the primary). */
export const WAIT_OUTCOMES = ['reached', 'timeout'] as const;
export type WaitOutcome = (typeof WAIT_OUTCOMES)[number];

export interface ReadStats {
  reads: Record<ReadTarget, number>;
  waits: Record<WaitOutcome, number>;
  /** Seconds spent in those waits, summed. */
  waitSeconds: number;
}

export function createReadStats(): ReadStats {
  return {
    reads: { standby: 0, primary: 0, fallback: 0 },
    waits: { reached: 0, timeout: 0 },
    waitSeconds: 0,
  };
}
