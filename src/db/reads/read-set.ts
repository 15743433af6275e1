/**
 * Which standbys may serve reads now. A background check (every `checkMs`, one bounded query per
 * server) samples the primary's WAL position with the time it was asked, and asks each standby
 * whether it is still in recovery and what it has replayed. A standby that has replayed past the
 * primary's sample taken at time t holds every commit acknowledged before t: its staleness is at
 * most now - t, a bound that only grows until the next answer. A standby is in the read set while
 * it answers, is in recovery, and that bound is within `maxLagMs`; a failed or promoted standby is
 * asked again with a doubling, jittered delay (at most one check in flight per server).
 */
import type { Logger } from '../../logger';
import type { DbStats } from '../../metrics/db-stats';
import type { Db } from '../runner';
import type { SqlHandle } from '../sql';
import type { PositionReader } from './position';

export interface Standby {
  /** host:port, for logs and metric labels. */
  readonly address: string;
  readonly handle: SqlHandle;
  readonly db: Db;
  readonly position: PositionReader;
  /** Its pool's counters (metrics). */
  readonly stats: DbStats;
  /** What the last answer said, for routing and metrics. */
  healthy: boolean;
  promoted: boolean;
  replayed: bigint | null;
  /** Every commit acknowledged by the primary before this time is on the standby. */
  freshAt: number;
  failures: number;
  nextCheckAt: number;
}

/** A standby not yet checked: out of the read set until its first healthy answer. */
export function newStandby(
  parts: Pick<Standby, 'address' | 'handle' | 'db' | 'position' | 'stats'>,
): Standby {
  return {
    ...parts,
    healthy: false,
    promoted: false,
    replayed: null,
    freshAt: -Infinity,
    failures: 0,
    nextCheckAt: 0,
  };
}

export interface ReadSet {
  readonly standbys: readonly Standby[];
  /** The standbys that may serve a read now (healthy, in recovery, within the lag bound). */
  eligible(): Standby[];
  /** Seconds the standby may be behind now (Infinity until it is known). */
  staleness(s: Standby): number;
  /** A read or wait learned the standby's position. */
  replayed(s: Standby, pos: { recovery: boolean; lsn: bigint }): void;
  /** A read on the standby failed: out of the set until a check finds it healthy. */
  failed(s: Standby, why: string): void;
  start(): void;
  stop(): void;
}

// A failed standby is asked again after checkMs doubling per failure, up to this.
const MAX_BACKOFF_MS = 10000;
// Primary samples kept: enough to cover the lag bound at the check interval, and then some.
const MAX_SAMPLES = 256;

export function createReadSet(deps: {
  standbys: Standby[];
  primary: PositionReader;
  maxLagMs: number;
  checkMs: number;
  logger: Logger;
  now?: () => number;
  random?: () => number;
}): ReadSet {
  const { standbys, primary, maxLagMs, checkMs, logger } = deps;
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  /** (time asked, primary position), oldest first. */
  const samples: Array<{ at: number; lsn: bigint }> = [];
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let started = false;
  let stopped = false;

  function replayed(s: Standby, pos: { recovery: boolean; lsn: bigint }): void {
    if (!pos.recovery) {
      if (!s.promoted)
        logger.warn('standby promoted: it leaves the read set', { standby: s.address });
      s.promoted = true;
      s.healthy = false;
      return;
    }
    if (s.promoted || !s.healthy) logger.info('standby joins the read set', { standby: s.address });
    s.promoted = false;
    s.healthy = true;
    s.failures = 0;
    // Each answer is the truth now (a restarted standby may be back at an older position).
    s.replayed = pos.lsn;
    s.freshAt = -Infinity;
    for (let i = samples.length - 1; i >= 0; i--) {
      const sample = samples[i]!;
      if (sample.lsn <= pos.lsn) {
        s.freshAt = sample.at;
        break;
      }
    }
  }

  function backoff(s: Standby): void {
    s.failures += 1;
    const delay = Math.min(MAX_BACKOFF_MS, checkMs * 2 ** Math.min(s.failures, 10));
    s.nextCheckAt = now() + delay * (0.5 + random() / 2);
  }

  function failed(s: Standby, why: string): void {
    if (s.healthy) logger.warn('standby leaves the read set', { standby: s.address, why });
    s.healthy = false;
    // Its position may be older after a restart: learned again from the next answer.
    s.replayed = null;
    if (s.nextCheckAt <= now()) backoff(s);
  }

  async function check(s: Standby): Promise<void> {
    try {
      const pos = await s.position.after();
      replayed(s, pos);
      if (s.promoted) backoff(s);
      else s.nextCheckAt = now();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      // Due now, so this backs the next check off.
      failed(s, typeof code === 'string' ? code : 'no answer');
    }
  }

  async function tick(): Promise<void> {
    const at = now();
    try {
      const pos = await primary.after();
      if (!pos.recovery) {
        samples.push({ at, lsn: pos.lsn });
        if (samples.length > MAX_SAMPLES) samples.shift();
      }
    } catch {
      // No sample: the standbys' bounds keep growing, and they age out of the set.
    }
    const due = standbys.filter((s) => s.nextCheckAt <= now());
    await Promise.all(due.map(check));
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      if (running) return schedule();
      running = true;
      void tick().finally(() => {
        running = false;
        schedule();
      });
    }, checkMs);
    timer.unref();
  }

  return {
    standbys,
    eligible() {
      const t = now();
      return standbys.filter((s) => s.healthy && !s.promoted && t - s.freshAt <= maxLagMs);
    },
    staleness: (s) => (s.healthy ? Math.max(0, now() - s.freshAt) / 1000 : Infinity),
    replayed,
    failed,
    start() {
      if (started || stopped) return;
      started = true;
      running = true;
      void tick().finally(() => {
        running = false;
        schedule();
      });
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
