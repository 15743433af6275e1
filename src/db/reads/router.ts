/**
 * Where a unit of work runs. Writes, and every read when no standby is configured or eligible,
 * run on the primary; a read runs on a standby of the read set, and one that presents a
 * Consistency-Token only on a standby that has replayed past the token's position: it waits at
 * most `waitMs` for one (the position read again with a doubling delay, one query in flight per
 * standby), then reads the primary. A read that fails on a standby is read again on the primary
 * (the standby leaves the set): a standby going down costs latency, never a failed read.
 * Each unit records, in `ctx.consistency`, the position its answer reflects.
 */
import { ClientGoneError } from '../../errors';
import type { Logger } from '../../logger';
import type { ReadStats } from '../../metrics/read-stats';
import { describe } from '../errors';
import type { Db, Sql, Tx, WorkContext } from '../runner';
import { later, type Position } from './lsn';
import type { PositionReader } from './position';
import type { ReadSet, Standby } from './read-set';

export interface RouterDeps {
  primary: Db;
  /** The primary's position (null: no standby configured, the token names "the primary"). */
  primaryPosition: PositionReader | null;
  set: ReadSet | null;
  waitMs: number;
  stats: ReadStats;
  logger: Logger;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

// The first re-read of a standby's position after this long, doubling up to the cap: a standby
// streaming nearby replays a commit in about a millisecond.
const FIRST_POLL_MS = 1;
const MAX_POLL_MS = 32;

export function createRouter(deps: RouterDeps): Db {
  const { primary, primaryPosition, set, waitMs, stats, logger } = deps;
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? realSleep;
  let turn = 0;

  function record(ctx: WorkContext, seen: Position): void {
    if (ctx.consistency) ctx.consistency.seen = later(ctx.consistency.seen ?? 0n, seen);
  }

  /** The primary's position now (after the unit's work), or "the primary" when unknown. */
  async function primaryNow(): Promise<Position> {
    if (!primaryPosition) return 'primary';
    try {
      const pos = await primaryPosition.after();
      return pos.recovery ? 'primary' : pos.lsn;
    } catch {
      return 'primary';
    }
  }

  function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      p,
      new Promise<null>((resolve) => {
        timer = setTimeout(resolve, Math.max(0, ms), null);
        timer.unref();
      }),
    ]).finally(() => clearTimeout(timer));
  }

  /** Waits until `s` has replayed `want`, within waitMs and the request's deadline. */
  async function waitFor(s: Standby, want: bigint, ctx: WorkContext): Promise<boolean> {
    const started = now();
    const until = Math.min(started + waitMs, ctx.deadline);
    let delay = FIRST_POLL_MS;
    let reached = false;
    while (!ctx.signal?.aborted && now() < until && set) {
      let pos;
      try {
        pos = await within(s.position.after(), until - now());
      } catch (err) {
        set.failed(s, describe(err).code);
        break;
      }
      if (pos === null) break;
      set.replayed(s, pos);
      if (!pos.recovery) break;
      if (pos.lsn >= want) {
        reached = true;
        break;
      }
      if (now() + delay >= until) break;
      await sleep(delay);
      delay = Math.min(delay * 2, MAX_POLL_MS);
    }
    stats.waits[reached ? 'reached' : 'timeout'] += 1;
    stats.waitSeconds += (now() - started) / 1000;
    return reached;
  }

  function pick(from: Standby[]): Standby {
    turn = (turn + 1) % 1_000_000;
    return from[turn % from.length]!;
  }

  /** A standby that may serve this read, or null: read the primary. */
  async function choose(want: Position | null, ctx: WorkContext): Promise<Standby | null> {
    if (!set || want === 'primary') return null;
    const candidates = set.eligible();
    if (candidates.length === 0) return null;
    if (want === null) return pick(candidates);
    const ready = candidates.filter((s) => s.replayed !== null && s.replayed >= want);
    if (ready.length > 0) return pick(ready);
    if (waitMs <= 0) return null;
    // The one furthest along is the first to get there.
    const best = candidates.reduce((a, b) => ((b.replayed ?? -1n) > (a.replayed ?? -1n) ? b : a));
    return (await waitFor(best, want, ctx)) ? best : null;
  }

  async function onStandby<T>(
    s: Standby,
    work: (sql: Sql) => Promise<T>,
    ctx: WorkContext,
  ): Promise<{ ok: true; value: T } | { ok: false }> {
    let value: T;
    try {
      value = await s.db.read(work, ctx);
    } catch (err) {
      if (ctx.signal?.aborted || err instanceof ClientGoneError) throw err;
      set?.failed(s, describe(err).code);
      logger.info('standby read failed: read again on the primary', {
        reqId: ctx.reqId,
        standby: s.address,
        ...describe(err),
      });
      return { ok: false };
    }
    // The answer reflects at most what the standby has replayed by now.
    try {
      const pos = await s.position.after();
      set?.replayed(s, pos);
      record(ctx, pos.recovery ? pos.lsn : 'primary');
    } catch {
      record(ctx, 'primary');
    }
    return { ok: true, value };
  }

  return {
    ...primary,
    async read(work, ctx) {
      const want = ctx.consistency?.after ?? null;
      const standby = await choose(want, ctx);
      if (standby) {
        const done = await onStandby(standby, work, ctx);
        if (done.ok) {
          stats.reads.standby += 1;
          return done.value;
        }
      }
      const value = await primary.read(work, ctx);
      stats.reads[set && want !== 'primary' ? 'fallback' : 'primary'] += 1;
      if (ctx.consistency) record(ctx, await primaryNow());
      return value;
    },
    async transaction<T>(work: (tx: Tx) => Promise<T>, ctx: WorkContext): Promise<T> {
      const value = await primary.transaction(work, ctx);
      // Read after the COMMIT was acknowledged: at or past its commit record.
      if (ctx.consistency) record(ctx, await primaryNow());
      return value;
    },
  };
}

function realSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
