/**
 * The hard bound on sockets to the database, so that a stall never becomes a storm
 * (docs/design/database-path.md, "A stall is not a storm"): per worker at most `limit` sockets
 * open or connecting at once (the pool plus one probe or cancel), a socket counted from the
 * moment it is asked for until it has closed; no new pool connection while the path is held
 * (known stalled); and after an attempt that failed (refused, silent, `too many clients`) the
 * next one waits a capped, jittered backoff.
 */
import type { AttemptOutcome } from '../metrics/db-stats';

export interface Slot {
  /** How the attempt ended; the first call counts, later ones are ignored. */
  settle(outcome: AttemptOutcome): void;
  /** The socket has closed: the slot is free again. Idempotent. */
  release(): void;
}

export interface ConnectGate {
  /** Waits for a slot (a pool connection). Rejects once the gate is closed. */
  acquire(): Promise<Slot>;
  /**
   * A slot now, or null: for a probe or a cancel, dropped rather than queued. Their outcomes
   * neither count as attempts nor move the backoff (a probe into a stalled path is silent by
   * design, and must not delay the pool's reconnects once the path heals).
   */
  tryAcquire(): Slot | null;
  /** While held, `acquire` waits (the path is known stalled: a new socket would wait in it). */
  hold(held: boolean): void;
  /** Sockets counted now (open or connecting). */
  inUse(): number;
  /** Attempts not settled yet (connecting). */
  connecting(): number;
  close(): void;
}

export interface ConnectGateDeps {
  limit: number;
  /** First backoff after a failure; doubles per consecutive failure up to `capMs`. */
  baseMs?: number;
  capMs?: number;
  onAttempt?: (outcome: AttemptOutcome) => void;
  /** Called with the number of attempts in progress each time it grows. */
  onConnecting?: (n: number) => void;
  random?: () => number;
  now?: () => number;
}

// The driver's own old schedule: 50 ms doubling, capped at 500 ms. Against a server that refuses
// connections that is at most 2-4 attempts a second per worker, and a restarted server is found
// within half a second.
const BASE_MS = 50;
const CAP_MS = 500;

export class GateClosedError extends Error {
  readonly code = 'KEEL_GATE_CLOSED';
  constructor() {
    super('the database connection gate is closed (the pool is ending)');
  }
}

export function createConnectGate(deps: ConnectGateDeps): ConnectGate {
  const baseMs = deps.baseMs ?? BASE_MS;
  const capMs = deps.capMs ?? CAP_MS;
  const random = deps.random ?? Math.random;
  const now = deps.now ?? Date.now;
  let used = 0;
  let pending = 0;
  let failures = 0;
  let notBefore = 0;
  let held = false;
  let closed = false;
  const waiters: Array<{ resolve: (slot: Slot) => void; reject: (err: Error) => void }> = [];
  let timer: NodeJS.Timeout | null = null;

  function slot(attempt: boolean): Slot {
    used += 1;
    if (attempt) {
      pending += 1;
      deps.onConnecting?.(pending);
    }
    let settled = !attempt;
    let released = false;
    return {
      settle(outcome) {
        if (settled) return;
        settled = true;
        pending -= 1;
        deps.onAttempt?.(outcome);
        if (outcome === 'opened') {
          failures = 0;
          return;
        }
        failures += 1;
        // Full backoff with jitter in [half, whole]: never zero, never above the cap.
        const whole = Math.min(capMs, baseMs * 2 ** (failures - 1));
        notBefore = Math.max(notBefore, now() + whole * (0.5 + random() / 2));
      },
      release() {
        if (released) return;
        released = true;
        if (!settled) {
          // Closed before any answer: a silent or refused attempt the caller did not name.
          this.settle('silent');
        }
        used -= 1;
        serve();
      },
    };
  }

  function serve(): void {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    while (waiters.length > 0 && !held && !closed && used < deps.limit) {
      const wait = notBefore - now();
      if (wait > 0) {
        timer = setTimeout(serve, wait);
        timer.unref();
        return;
      }
      waiters.shift()!.resolve(slot(true));
    }
  }

  return {
    acquire() {
      if (closed) return Promise.reject(new GateClosedError());
      return new Promise<Slot>((resolve, reject) => {
        waiters.push({ resolve, reject });
        serve();
      });
    },
    tryAcquire() {
      if (closed || used >= deps.limit) return null;
      return slot(false);
    },
    hold(next) {
      held = next;
      serve();
    },
    inUse: () => used,
    connecting: () => pending,
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      for (const w of waiters.splice(0)) w.reject(new GateClosedError());
    },
  };
}
