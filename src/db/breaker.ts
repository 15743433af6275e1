/**
 * Per-worker circuit breaker. After a run of connection failures it opens: requests stop
 * touching the database and wait (within their own budget) while a single probe at a time
 * checks whether the server answers; the first successful probe closes it for everyone.
 */
import { UnavailableError } from '../errors';
import type { Logger } from '../logger';
import type { DbStats } from '../metrics/db-stats';

export interface BreakerDeps {
  probe: () => Promise<void>;
  logger: Logger;
  stats: DbStats;
  /** Consecutive connection failures that open it. */
  threshold?: number;
  /** How long a run of failures must last before it counts as an outage. */
  minFailingMs?: number;
  /** Pause between probes while open. */
  probeIntervalMs?: number;
  now?: () => number;
}

export interface Breaker {
  /** Resolves when work may go to the database; throws 503 if the deadline comes first. */
  admit(deadline: number): Promise<void>;
  success(): void;
  failure(): void;
  isOpen(): boolean;
  /** Probe now rather than at the next interval (the path was just seen answering again). */
  probeNow(): void;
  /** Stops probing (shutdown). */
  stop(): void;
}

export function createBreaker(deps: BreakerDeps): Breaker {
  const { logger, stats } = deps;
  const now = deps.now ?? Date.now;
  // Five in a row over at least minFailingMs: one terminated backend fails only the queries on
  // it, an outage fails them all and keeps failing them.
  const threshold = deps.threshold ?? 5;
  // Probing every 100 ms lets traffic through within a tenth of a second of recovery.
  const probeIntervalMs = deps.probeIntervalMs ?? 100;
  // A run of failures must also last this long: terminating every backend at once fails a
  // pool's worth of queries within milliseconds, and that is not an outage.
  const minFailingMs = deps.minFailingMs ?? 250;
  let failures = 0;
  let failingSince = 0;
  let openedAt: number | null = null;
  let waiters: Array<() => void> = [];
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  let probing = false;
  let kicked = false;

  function open(): void {
    if (openedAt !== null) return;
    openedAt = now();
    stats.breakerState = 'open';
    stats.breakerOpenings += 1;
    logger.warn('database outage: breaker open', { failures });
    scheduleProbe(0);
  }

  function close(): void {
    failures = 0;
    if (openedAt === null) return;
    logger.warn('database outage over: breaker closed', { outageMs: now() - openedAt });
    openedAt = null;
    stats.breakerState = 'closed';
    const ready = waiters;
    waiters = [];
    for (const w of ready) w();
  }

  function scheduleProbe(delay: number): void {
    if (timer || stopped) return;
    timer = setTimeout(runProbe, delay);
    timer.unref();
  }

  async function runProbe(): Promise<void> {
    probing = true;
    try {
      await deps.probe();
      timer = null;
      close();
    } catch {
      timer = null;
      if (openedAt !== null) scheduleProbe(kicked ? 0 : probeIntervalMs);
    } finally {
      kicked = false;
      probing = false;
    }
  }

  return {
    async admit(deadline) {
      if (openedAt === null) return;
      const left = deadline - now();
      if (left <= 0) throw unavailable();
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => {
          waiters = waiters.filter((w) => w !== done);
          reject(unavailable());
        }, left);
        t.unref();
        const done = () => {
          clearTimeout(t);
          resolve();
        };
        waiters.push(done);
      });
    },
    success() {
      failures = 0;
      if (openedAt !== null) close();
    },
    failure() {
      if (failures === 0) failingSince = now();
      failures += 1;
      if (failures >= threshold && now() - failingSince >= minFailingMs) open();
    },
    isOpen: () => openedAt !== null,
    probeNow() {
      if (openedAt === null || stopped) return;
      // The probe in flight may be on a connection that is being replaced: go again at once.
      if (probing) {
        kicked = true;
        return;
      }
      if (timer) clearTimeout(timer);
      timer = null;
      scheduleProbe(0);
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

export function unavailable(cause?: unknown): UnavailableError {
  return new UnavailableError('database_unavailable', undefined, { cause });
}
