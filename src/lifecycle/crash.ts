/**
 * Signals and crashes: SIGINT, SIGTERM or PM2's `shutdown` message start the graceful sequence;
 * a second signal exits at once; an uncaught error shuts down non-zero so PM2 replaces the worker
 * (which signal PM2 sends when: docs/design/pm2.md).
 */
import type { Logger } from '../logger';
import type { Shutdown } from './shutdown';

// A repeat within this window is the same stop delivered twice, not an operator insisting:
// Ctrl+C in a terminal, systemd's KillMode=control-group or `kill -- -pgid` signal the whole
// process group, and PM2 then relays its own SIGINT to the worker (80-400 ms later under load
// here). Exiting on that relay would drop every in-flight request.
export const DUPLICATE_SIGNAL_WINDOW_MS = 2000;

export interface CrashDeps {
  logger: Logger;
  shutdown: Shutdown;
  proc: NodeJS.Process;
  now?: () => number;
}

export function installCrashHandlers({ logger, shutdown, proc, now = Date.now }: CrashDeps): void {
  let firstSignalAt: number | null = null;
  const onSignal = (signal: string) => {
    const at = now();
    if (firstSignalAt === null) {
      firstSignalAt = at;
      void shutdown(signal);
      return;
    }
    const afterMs = at - firstSignalAt;
    if (afterMs < DUPLICATE_SIGNAL_WINDOW_MS) {
      logger.info('repeated stop signal: already draining', { signal, afterMs });
      return;
    }
    logger.warn('second signal: exiting now', { signal, afterMs });
    proc.exit(1);
  };
  proc.on('SIGINT', () => onSignal('SIGINT'));
  proc.on('SIGTERM', () => onSignal('SIGTERM'));
  proc.on('message', (msg) => {
    if (msg === 'shutdown') onSignal('shutdown message');
  });

  const onCrash = (kind: string) => (err: unknown) => {
    const e = err instanceof Error ? err : new Error(String(err));
    logger.error(kind, {
      reqId: (e as { reqId?: unknown }).reqId,
      err: `${e.name}: ${e.message}`,
      stack: e.stack,
    });
    void shutdown(kind, 1);
  };
  proc.on('uncaughtException', onCrash('uncaught exception'));
  proc.on('unhandledRejection', onCrash('unhandled rejection'));
}
