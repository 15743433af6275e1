/**
 * The one shutdown sequence, idempotent, as one ordered list of named steps:
 *
 *   not ready → stop accepting → drain → the worker's own steps (in the order main registers
 *   them: key sweeper, PM2 metrics, sibling metrics) → close database → flush logs → exit.
 *
 * Every step runs even when an earlier one failed; `shutdown complete` lists each step with its
 * duration. Idle keep-alive sockets are never closed before the drain deadline: every answer
 * from now on says `Connection: close` (docs/design/shutdown.md says why, and why not a library).
 */
import net from 'node:net';
import type http from 'node:http';
import { DB_CLOSE_MAX_MS, DB_CLOSE_MIN_MS } from '../config/shutdown-budget';
import type { Readiness } from './readiness';
import type { ConnectionTracker } from './connections';

/** A step of the worker's own, run after the drain and before the database closes. */
export interface ShutdownStep {
  name: string;
  run: () => Promise<void> | void;
}

export interface ShutdownDeps {
  server: http.Server;
  tracker: ConnectionTracker;
  readiness: Readiness;
  timeoutMs: number;
  closeDb: (timeoutS: number) => Promise<void>;
  flushLogs: () => Promise<void>;
  /** In order; each is logged by name. */
  steps?: readonly ShutdownStep[];
  log: (msg: string, meta?: Record<string, unknown>) => void;
  exit: (code: number) => void;
}

export type Shutdown = (reason: string, exitCode?: number) => Promise<void>;

export function createShutdown(deps: ShutdownDeps): Shutdown {
  let started: Promise<void> | null = null;
  // A crash during a signal's drain still makes the exit non-zero.
  let requestedCode = 0;

  async function step(
    done: Array<{ step: string; ms: number }>,
    name: string,
    fn: () => Promise<void> | void,
  ): Promise<void> {
    const t0 = Date.now();
    try {
      await fn();
    } catch (err) {
      // One failing step never skips the next.
      deps.log('shutdown step failed', {
        step: name,
        err: err instanceof Error ? err.message : String(err),
      });
    } finally {
      done.push({ step: name, ms: Date.now() - t0 });
    }
  }

  async function run(reason: string): Promise<void> {
    const started = Date.now();
    const done: Array<{ step: string; ms: number }> = [];
    deps.log('shutdown started', {
      reason,
      inFlight: deps.tracker.inFlight(),
      sockets: deps.tracker.sockets(),
    });
    await step(done, 'not ready', () => deps.readiness.startDraining());
    // net.Server's close stops accepting (and tells PM2's master to stop routing to us) without
    // http.Server's closeIdleConnections().
    await step(done, 'stop accepting', () => {
      net.Server.prototype.close.call(deps.server);
    });
    let forced = false;
    await step(done, 'drain', async () => {
      const deadline = new Promise<'deadline'>((resolve) =>
        setTimeout(resolve, deps.timeoutMs, 'deadline').unref(),
      );
      // Idle sockets stay open (docs/design/shutdown.md): only the deadline ends what is left.
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
    for (const s of deps.steps ?? []) await step(done, s.name, s.run);
    // Requests are done; queries still running belong to abandoned requests: they get what is
    // left of the budget, within the bounds kill_timeout is computed from.
    const leftMs = deps.timeoutMs - (Date.now() - started);
    const leftS = Math.min(DB_CLOSE_MAX_MS, Math.max(DB_CLOSE_MIN_MS, leftMs)) / 1000;
    await step(done, 'close database', () => deps.closeDb(leftS));
    const code = requestedCode !== 0 ? requestedCode : forced ? 1 : 0;
    deps.log('shutdown complete', { reason, code, ms: Date.now() - started, steps: [...done] });
    await step(done, 'flush logs', deps.flushLogs);
    deps.exit(code);
  }

  return (reason, exitCode = 0) => {
    if (exitCode !== 0 && requestedCode === 0) requestedCode = exitCode;
    if (started) return started;
    started = run(reason);
    return started;
  };
}
