/**
 * The one shutdown sequence, idempotent: not ready → stop accepting → drain → close the pool →
 * flush logs → exit. Idle keep-alive sockets are left to their clients until the deadline
 * (destroying them early resets a client that is writing its next request right then); every
 * answer from now on says `Connection: close`, so clients leave on their own.
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

  async function run(reason: string, requestedCode: number): Promise<void> {
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
    // What is left of the budget goes to in-progress queries; at least one second.
    const leftS = Math.max(1, (deps.timeoutMs - (Date.now() - started)) / 1000);
    await step('close database', () => deps.closeDb(leftS));
    const code = requestedCode !== 0 ? requestedCode : forced ? 1 : 0;
    deps.log('shutdown complete', { reason, code, ms: Date.now() - started });
    await step('flush logs', deps.flushLogs);
    deps.exit(code);
  }

  return (reason, exitCode = 0) => {
    if (started) return started;
    started = run(reason, exitCode);
    return started;
  };
}
