/**
 * The per-worker gate in front of the pool: at most `slots` units of work hold a connection at
 * once (so postgres.js never queues a unit internally, where it would run after its request
 * was answered), a bounded, deadline-aware wait for the rest, and load shed before any work:
 * a unit whose expected wait would pass its deadline is refused at once.
 */

export interface Admission {
  /**
   * Resolves with a release function once a slot is free; rejects with `ShedError` when the
   * deadline passes first, or would (the expected wait), or the signal fires. Nothing started.
   */
  acquire(deadline: number, signal?: AbortSignal): Promise<Release>;
  active(): number;
  waiting(): number;
}

/** Frees the slot; `ok` says the hold was a real unit of work (it counts toward the average). */
export type Release = (ok: boolean) => void;

export class ShedError extends Error {
  constructor(readonly reason: 'deadline' | 'overload' | 'aborted') {
    super(`not admitted (${reason})`);
    this.name = 'ShedError';
  }
}

interface Waiter {
  deadline: number;
  grant: (release: Release) => void;
  refuse: (err: ShedError) => void;
}

export interface AdmissionDeps {
  slots: number;
  /** Most units waiting at once (memory bound); the deadline usually sheds long before. */
  maxWaiting?: number;
  now?: () => number;
}

// A new hold time counts 1/8 toward the running average: steady, yet follows a change in ~1 s of load.
const EWMA_WEIGHT = 0.125;

export function createAdmission(deps: AdmissionDeps): Admission {
  const now = deps.now ?? Date.now;
  const maxWaiting = deps.maxWaiting ?? deps.slots * 64;
  const queue: Waiter[] = [];
  let active = 0;
  // Average time a unit holds its slot (ms); 0 until one has finished, so nothing is shed blind.
  let holdMs = 0;

  function release(started: number): Release {
    let done = false;
    return (ok) => {
      if (done) return;
      done = true;
      const held = now() - started;
      // A failed hold (a connection that died, a stalled path) says nothing about how fast
      // the database serves: counted, one outage would make the gate shed long after it.
      if (ok) holdMs = holdMs === 0 ? held : holdMs + EWMA_WEIGHT * (held - holdMs);
      active -= 1;
      next();
    };
  }

  function next(): void {
    while (active < deps.slots && queue.length > 0) {
      const w = queue.shift()!;
      // Its timer may not have fired yet: a unit whose deadline has passed never starts.
      if (now() >= w.deadline) {
        w.refuse(new ShedError('deadline'));
        continue;
      }
      active += 1;
      w.grant(release(now()));
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
      // Slots free up at about slots/holdMs per ms: the wait for position n, plus the unit's own
      // hold, must fit before the deadline, or the unit would only be abandoned half-way.
      const expectedMs = Math.ceil((queue.length + 1) / deps.slots) * holdMs + holdMs;
      if (queue.length >= maxWaiting || t + expectedMs > deadline) {
        return Promise.reject(new ShedError('overload'));
      }
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
