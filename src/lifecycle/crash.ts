/**
 * Signals and crashes. SIGINT, SIGTERM and PM2's `shutdown` message start the graceful
 * sequence; a second signal exits at once. An uncaught exception or unhandled rejection is
 * logged (with the request id when the error carries one) and the worker shuts down with a
 * non-zero code so PM2 replaces it.
 */
import type { Logger } from '../logger';
import type { Shutdown } from './shutdown';

export interface CrashDeps {
  logger: Logger;
  shutdown: Shutdown;
  proc: NodeJS.Process;
}

export function installCrashHandlers({ logger, shutdown, proc }: CrashDeps): void {
  let signals = 0;
  const onSignal = (signal: string) => {
    signals += 1;
    if (signals > 1) {
      logger.warn('second signal: exiting now', { signal });
      proc.exit(1);
    }
    void shutdown(signal);
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
