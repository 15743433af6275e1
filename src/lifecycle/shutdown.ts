/**
 * The one shutdown sequence, idempotent: not ready → stop accepting → drain → close the pool →
 * flush logs → exit. Idle keep-alive sockets are not destroyed when the signal arrives
 * (that resets a client that is writing its next request right then): every answer from now on
 * says `Connection: close`, so busy clients leave on their own. An idle keep-alive socket is never
 * closed from our side before the drain deadline: HTTP/1.1 has no race-free way to do that (a
 * client may be sending its next request at that instant); its next request gets the
 * `Connection: close` answer, or the client closes it itself, as the `Keep-Alive: timeout=N`
 * hint (N ≤ the deadline, see the drain middleware) told it to.
 *
 * Hand-written rather than a library, on purpose: http-terminator and @godaddy/terminus (via
 * stoppable) end idle keep-alive sockets the moment shutdown starts, which is the ECONNRESET
 * race above, and terminus re-raises the signal (or exits 0) instead of exiting with our code;
 * close-with-grace only covers signals, and exits on any second signal (see crash.ts for why
 * we don't). What is left here is ~100 lines with each step unit-tested.
 */
import net from 'node:net';
import type http from 'node:http';
import type { Readiness } from './readiness';
import type { ConnectionTracker } from './connections';

export interface ShutdownDeps {
  server: http.Server;
  tracker: ConnectionTracker;
  readiness: Readiness;
  timeoutMs: number;
  closeDb: (timeoutS: number) => Promise<void>;
  flushLogs: () => Promise<void>;
  log: (msg: string, meta?: Record<string, unknown>) => void;
  exit: (code: number) => void;
}

export type Shutdown = (reason: string, exitCode?: number) => Promise<void>;

export function createShutdown(deps: ShutdownDeps): Shutdown {
  let started: Promise<void> | null = null;
  // A crash during a signal's drain still makes the exit non-zero.
  let requestedCode = 0;

  async function step(name: string, fn: () => Promise<void> | void): Promise<void> {
    try {
      await fn();
    } catch (err) {
      // One failing step never skips the next.
      deps.log('shutdown step failed', {
        step: name,
        err: err instanceof Error ? err.message : String(err),
      });
    }
  }

  async function run(reason: string): Promise<void> {
    const started = Date.now();
    deps.log('shutdown started', {
      reason,
      inFlight: deps.tracker.inFlight(),
      sockets: deps.tracker.sockets(),
    });
    deps.readiness.startDraining();
    // net.Server's close stops accepting (and tells PM2's master to stop routing to us) without
    // http.Server's closeIdleConnections().
    await step('stop accepting', () => {
      net.Server.prototype.close.call(deps.server);
    });
    let forced = false;
    await step('drain', async () => {
      const deadline = new Promise<'deadline'>((resolve) =>
        setTimeout(resolve, deps.timeoutMs, 'deadline').unref(),
      );
      // Idle sockets stay open (see above): a client holding one idle costs drain time, never a
      // dropped request. Only the deadline ends what is left.
      const outcome = await Promise.race([
        deps.tracker.whenClosed().then(() => 'drained' as const),
        deadline,
      ]);
      if (outcome === 'deadline') {
        forced = deps.tracker.inFlight() > 0;
        deps.log('shutdown deadline reached', {
          inFlight: deps.tracker.inFlight(),
          sockets: deps.tracker.sockets(),
        });
        deps.tracker.destroyAll();
      }
    });
    // Requests are done; queries still running belong to abandoned requests: they get what is
    // left of the budget, at least one second and at most two (kill_timeout arithmetic).
    const leftS = Math.min(2, Math.max(1, (deps.timeoutMs - (Date.now() - started)) / 1000));
    await step('close database', () => deps.closeDb(leftS));
    const code = requestedCode !== 0 ? requestedCode : forced ? 1 : 0;
    deps.log('shutdown complete', { reason, code, ms: Date.now() - started });
    await step('flush logs', deps.flushLogs);
    deps.exit(code);
  }

  return (reason, exitCode = 0) => {
    if (exitCode !== 0 && requestedCode === 0) requestedCode = exitCode;
    if (started) return started;
    started = run(reason);
    return started;
  };
}
