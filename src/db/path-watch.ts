/**
 * Tells a stalled path to the database (a proxy that keeps sockets open and answers nothing)
 * from a slow query with an 8-byte SSLRequest probe on a fresh connection, and sees the path
 * heal within one round trip. One probe at a time: while the path is stalled the same probe
 * socket waits in it (its request resent now and then), so a stall costs one extra connection,
 * not one per tick (docs/design/database-path.md).
 */
import type { Logger } from '../logger';
import { PROBE_OUTCOMES, type Probe, type ProbeOutcome } from './ssl-probe';

export interface PathWatch {
  /** Called on every watchdog tick with how long the connections have been silent (ms). */
  tick(silentMs: number): void;
  /** Epoch ms since when the path is known stalled, or null. */
  stalledSince(): number | null;
  /** A probe opened at or after `t` was answered: the path worked after `t`. */
  answeredSince(t: number): boolean;
  /** When the path last healed (epoch ms), or -Infinity. */
  healedAt(): number;
  /** A pool connection read bytes: the path answers. */
  heard(): void;
  stop(): void;
}

export interface PathWatchDeps {
  /** Opens a probe, or returns null when no connection slot is free now (try again later). */
  probe: () => Probe | null;
  /** The path is found stalled. */
  onStall: () => void;
  /** The path works again; `since` is when it was first found stalled. */
  onHeal: (since: number) => void;
  logger: Logger;
  suspectMs?: number;
  probeTimeoutMs?: number;
  now?: () => number;
}

// Silence this long on a busy path is suspicious: a healthy one answers something every few ms.
const SUSPECT_MS = 500;
// A server answers an SSLRequest in one round trip. A second covers any sane network and a
// loaded two-core box; the verdict also waits out the event loop's own lag (see `judge`).
const PROBE_TIMEOUT_MS = 1000;
// While stalled, the waiting probe resends its request this often: a path that lost the first
// one (a blackhole rather than a holding proxy) is heard at most this late after it heals.
const RESEND_MS = 250;
// A probe that never even connected is replaced, at most this often: one fresh connection per
// interval, doubling up to the cap (a SYN lost in a partition is retried by TCP itself, slowly).
const REOPEN_MS = 2000;
const REOPEN_CAP_MS = 16000;
// A connected probe that still has no answer this long after it opened is replaced too (a
// proxy may have lost that one flow for good).
const PROBE_MAX_AGE_MS = 30000;
// The event loop ran this late: the answer may be sitting unread, so the verdict waits.
const LAG_SLACK_MS = 50;

export function createPathWatch(deps: PathWatchDeps): PathWatch {
  const now = deps.now ?? Date.now;
  const suspectMs = deps.suspectMs ?? SUSPECT_MS;
  const timeoutMs = deps.probeTimeoutMs ?? PROBE_TIMEOUT_MS;
  let stalledAt: number | null = null;
  let healedAt = -Infinity;
  // Open time of the newest probe that was answered.
  let answeredOpened = -Infinity;
  // A probe answered while nothing was known stalled: the silence so far is a slow query.
  let clearedAt = 0;
  let current: { probe: Probe; opened: number } | null = null;
  let reopenAfter = 0;
  let reopenMs = REOPEN_MS;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  const outcomes = Object.fromEntries(PROBE_OUTCOMES.map((k) => [k, 0])) as Record<
    ProbeOutcome,
    number
  >;

  function heal(): void {
    if (stalledAt === null) return;
    const since = stalledAt;
    stalledAt = null;
    healedAt = now();
    reopenMs = REOPEN_MS;
    // Healed by a pool connection's bytes: the waiting probe has done its job.
    current?.probe.abandon();
    current = null;
    if (timer) clearTimeout(timer);
    timer = null;
    deps.logger.warn('database path answers again', { stalledMs: healedAt - since });
    deps.onHeal(since);
  }

  function open(): void {
    const probe = deps.probe();
    if (!probe) return;
    const opened = now();
    current = { probe, opened };
    void probe.answered.then((outcome) => {
      outcomes[outcome] += 1;
      if (current?.probe === probe) current = null;
      if (stopped || outcome === 'abandoned') return;
      // Refused or reset: the path answers (with an error); the breaker handles that outage.
      answeredOpened = Math.max(answeredOpened, opened);
      if (stalledAt === null) clearedAt = now();
      heal();
    });
    judge(probe, opened, opened + timeoutMs);
  }

  /**
   * The verdict on a probe once its time is up. A timer that fired late means the event loop
   * was busy: the answer may have arrived meanwhile and be waiting to be read, so wait that lag
   * again; and decide only after the loop has polled for I/O once (setImmediate).
   */
  function judge(probe: Probe, opened: number, due: number): void {
    const t = setTimeout(
      () => {
        const lag = now() - due;
        if (lag > LAG_SLACK_MS) return judge(probe, opened, now() + lag);
        setImmediate(() => {
          if (stopped || current?.probe !== probe || stalledAt !== null) return;
          if (answeredOpened >= opened) return;
          stalledAt = opened;
          deps.logger.warn('database path stalled: a fresh connection got no answer', {
            probeTimeoutMs: timeoutMs,
          });
          deps.onStall();
          keepProbing();
        });
      },
      Math.max(0, due - now()),
    );
    t.unref();
  }

  /** While stalled: resend on the waiting probe; replace it only when it is hopeless. */
  function keepProbing(): void {
    timer = null;
    if (stopped || stalledAt === null) return;
    const t = now();
    if (current) {
      const age = t - current.opened;
      const hopeless = current.probe.connected() ? age >= PROBE_MAX_AGE_MS : age >= reopenMs;
      if (hopeless) {
        current.probe.abandon();
        current = null;
        reopenAfter = t + reopenMs;
        reopenMs = Math.min(REOPEN_CAP_MS, reopenMs * 2);
      } else {
        current.probe.resend();
      }
    }
    if (!current && t >= reopenAfter) open();
    timer = setTimeout(keepProbing, RESEND_MS);
    timer.unref();
  }

  return {
    tick(silentMs) {
      if (stopped || stalledAt !== null || current) return;
      // Silence counted from the last probe that found the path fine.
      const since = Math.min(silentMs, now() - clearedAt);
      if (since >= suspectMs) open();
    },
    stalledSince: () => stalledAt,
    answeredSince: (t) => answeredOpened >= t,
    healedAt: () => healedAt,
    heard() {
      // A pool connection's bytes prove the path as well as a probe's answer.
      if (stalledAt !== null) heal();
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      current?.probe.abandon();
      current = null;
    },
  };
}
