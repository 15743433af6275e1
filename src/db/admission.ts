/**
 * The per-worker gate in front of the pool: at most `slots` units hold a connection, a bounded
 * wait for the rest (in order while young, newest first once it stands), load shed before work
 * starts. Why adaptive LIFO: docs/design/database-path.md.
 */
import type { ShedReason } from '../metrics/db-stats';

export interface Admission {
  /**
   * Resolves with a release function once a slot is free; rejects with `ShedError` when the
   * deadline passes first, or even the next slot would come after it, or the signal fires, or
   * the wait is full and this unit is the oldest. Nothing has started when it rejects.
   */
  acquire(deadline: number, signal?: AbortSignal): Promise<Release>;
  active(): number;
  waiting(): number;
}

/**
 * Frees the slot. `measured` says the hold time tells how long a unit takes here: true for an
 * answer or a query error before the deadline; false when the connection died, the path
 * stalled or the deadline came first (such a hold says nothing about the database's speed:
 * counted, an outage or a starved box would make the gate refuse everything long after).
 */
export type Release = (measured: boolean) => void;

export class ShedError extends Error {
  constructor(readonly reason: ShedReason) {
    super(`not admitted (${reason})`);
    this.name = 'ShedError';
  }
}

interface Waiter {
  since: number;
  deadline: number;
  grant: (release: Release) => void;
  refuse: (err: ShedError) => void;
}

export interface AdmissionDeps {
  slots: number;
  /**
   * Most units waiting at once (a memory bound: a waiter is a few hundred bytes); when full,
   * the oldest waiter is refused. Far above what a worker sees: PM2's round robin can hand one
   * busy worker most of a burst of connections, and a full wait answers at once.
   */
  maxWaiting?: number;
  now?: () => number;
}

// A new hold time counts 1/8 toward the running average: steady, yet follows a change in ~1 s of load.
const EWMA_WEIGHT = 0.125;

export function createAdmission(deps: AdmissionDeps): Admission {
  const now = deps.now ?? Date.now;
  const maxWaiting = deps.maxWaiting ?? Math.max(1024, deps.slots * 64);
  // Oldest first; under pressure served from the end.
  const queue: Waiter[] = [];
  let active = 0;
  // Average time a unit holds its slot (ms); 0 until one has finished, so nothing is shed blind.
  let holdMs = 0;

  /**
   * Serve the newest: the wait stands (more waiters than slots, the oldest has spent half its
   * budget waiting), or the oldest has too little time left to finish. A waiter passed over is
   * not refused at once (an instant 503 only brings its client straight back): it waits for a
   * slot or its deadline.
   */
  function newestFirst(t: number): boolean {
    const oldest = queue[0];
    if (oldest === undefined) return false;
    const standing =
      queue.length > deps.slots && t - oldest.since > (oldest.deadline - oldest.since) / 2;
    return standing || oldest.deadline - t < holdMs;
  }

  function release(started: number): Release {
    let done = false;
    return (measured) => {
      if (done) return;
      done = true;
      const held = now() - started;
      if (measured) holdMs = holdMs === 0 ? held : holdMs + EWMA_WEIGHT * (held - holdMs);
      active -= 1;
      next();
    };
  }

  function next(): void {
    while (active < deps.slots && queue.length > 0) {
      const t = now();
      const w = newestFirst(t) ? queue.pop()! : queue.shift()!;
      // Its timer may not have fired yet: a unit whose deadline has passed never starts. One
      // with little time left still does: it is the best this slot can do.
      if (t >= w.deadline) {
        w.refuse(new ShedError('deadline'));
        continue;
      }
      active += 1;
      w.grant(release(t));
    }
  }

  return {
    active: () => active,
    waiting: () => queue.length,
    acquire(deadline, signal) {
      if (signal?.aborted) return Promise.reject(new ShedError('aborted'));
      const t = now();
      if (t >= deadline) return Promise.reject(new ShedError('deadline'));
      if (active < deps.slots && queue.length === 0) {
        active += 1;
        return Promise.resolve(release(t));
      }
      // Even served next (as a newcomer to a standing wait is), its wait for a slot alone would
      // pass its deadline: refused now. Not for less: time left to wait is worth waiting, since
      // an instant 503 only brings a client that ignores Retry-After straight back.
      if (deadline - t < holdMs / deps.slots) {
        return Promise.reject(new ShedError('overload'));
      }
      // The wait is full: the oldest waiter has the least chance of being served. It goes.
      if (queue.length >= maxWaiting) queue.shift()!.refuse(new ShedError('full'));
      return new Promise((resolve, reject) => {
        const leave = (err: ShedError) => {
          const i = queue.indexOf(waiter);
          if (i >= 0) queue.splice(i, 1);
          cleanup();
          reject(err);
        };
        const onAbort = () => leave(new ShedError('aborted'));
        const timer = setTimeout(() => leave(new ShedError('deadline')), deadline - t);
        timer.unref();
        const cleanup = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        };
        const waiter: Waiter = {
          since: t,
          deadline,
          grant: (r) => {
            cleanup();
            resolve(r);
          },
          refuse: (err) => {
            cleanup();
            reject(err);
          },
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        queue.push(waiter);
      });
    },
  };
}
