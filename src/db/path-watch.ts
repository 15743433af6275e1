/**
 * Tells a stalled path to the database (every byte dropped, sockets open) from a slow query with
 * an 8-byte SSLRequest probe, and heals the pool within ~50 ms of the path's return
 * (docs/design/database-path.md).
 */
import net from 'node:net';
import type { Logger } from '../logger';

export interface PathWatch {
  /** Called on every watchdog tick with how long the connections have been silent (ms). */
  tick(silentMs: number): void;
  /** Epoch ms since when the path is known stalled, or null. */
  stalledSince(): number | null;
  /** Reconnect without the driver's backoff: the path is stalled or has just healed. */
  reconnectNow(): boolean;
  stop(): void;
}

export interface PathWatchDeps {
  /** Resolves true when the path answered within timeoutMs. */
  probe: (timeoutMs: number) => Promise<boolean>;
  /** The path works again; `since` is when it was first found stalled. */
  onHeal: (since: number) => void;
  logger: Logger;
  suspectMs?: number;
  probeEveryMs?: number;
  probeTimeoutMs?: number;
  now?: () => number;
}

// Silence this long on a busy path is suspicious: a healthy one answers something every few ms.
const SUSPECT_MS = 250;
// One probe every 25 ms while stalled: the heal is seen at most 25 ms (plus one round trip) late.
const PROBE_EVERY_MS = 25;
// A server answers an SSLRequest in one round trip; 500 ms covers any sane network.
const PROBE_TIMEOUT_MS = 500;
const RECONNECT_FAST_MS = 1000;

export function createPathWatch(deps: PathWatchDeps): PathWatch {
  const now = deps.now ?? Date.now;
  const suspectMs = deps.suspectMs ?? SUSPECT_MS;
  const everyMs = deps.probeEveryMs ?? PROBE_EVERY_MS;
  const timeoutMs = deps.probeTimeoutMs ?? PROBE_TIMEOUT_MS;
  let stalledAt: number | null = null;
  let healedAt = -Infinity;
  // Send time of the newest probe that was answered: an older one that fails later is stale.
  let answeredSent = -Infinity;
  let inFlight = 0;
  let lastProbe = 0;
  // A probe answered while nothing was known stalled: the silence so far is a slow query.
  let clearedAt = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;

  function probeOnce(): void {
    if (stopped || inFlight >= Math.ceil(timeoutMs / everyMs)) return;
    const sent = now();
    lastProbe = sent;
    inFlight += 1;
    void deps.probe(timeoutMs).then((ok) => {
      inFlight -= 1;
      if (stopped) return;
      if (ok) {
        answeredSent = Math.max(answeredSent, sent);
        if (stalledAt !== null && sent >= stalledAt) {
          const since = stalledAt;
          stalledAt = null;
          healedAt = now();
          deps.logger.warn('database path answers again', { stalledMs: now() - since });
          deps.onHeal(since);
        }
        if (stalledAt === null) clearedAt = now();
        return;
      }
      if (stalledAt === null && sent > answeredSent) {
        stalledAt = sent;
        deps.logger.warn('database path stalled: a fresh connection got no answer', {
          probeTimeoutMs: timeoutMs,
        });
      }
    });
  }

  function loop(): void {
    timer = null;
    if (stopped || stalledAt === null) return;
    probeOnce();
    timer = setTimeout(loop, everyMs);
    timer.unref();
  }

  return {
    tick(silentMs) {
      if (stopped) return;
      if (stalledAt !== null) {
        if (!timer) loop();
        return;
      }
      // Silence counted from the last probe that found the path fine.
      const since = Math.min(silentMs, now() - clearedAt);
      if (since >= suspectMs && inFlight === 0 && now() - lastProbe >= everyMs) probeOnce();
    },
    stalledSince: () => stalledAt,
    // While stalled a reconnect costs nothing (it waits in the hole), and right after the heal
    // every second counts: the driver's outage backoff would hold a healed pool up to 500 ms.
    reconnectNow: () => stalledAt !== null || now() - healedAt < RECONNECT_FAST_MS,
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

/** The path probe: an SSLRequest on a fresh connection, answered by one byte before any auth. */
export function sslRequestProbe(target: () => { host: string; port: number }) {
  return (timeoutMs: number): Promise<boolean> =>
    new Promise((resolve) => {
      const socket = net.connect(target());
      const done = (ok: boolean) => {
        clearTimeout(timer);
        socket.destroy();
        resolve(ok);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      timer.unref();
      socket.once('connect', () => {
        // Length 8, code 80877103: "may we speak TLS?" The answer is 'S' or 'N'.
        const msg = Buffer.alloc(8);
        msg.writeInt32BE(8, 0);
        msg.writeInt32BE(80877103, 4);
        socket.write(msg);
      });
      socket.once('data', () => done(true));
      // Refused or reset: the path answers (with an error); the breaker handles that outage.
      socket.once('error', () => done(true));
      socket.once('close', () => done(true));
    });
}
