/**
 * Everything the benchmark starts registers its own undo here; `run()` undoes them last-first,
 * once, on success, on failure and on Ctrl-C. Every step is bounded, and one failing step does
 * not skip the next.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Log } from './types';

// A step that takes longer than this is abandoned (pm2 kill and pg_ctl stop take ~1 s).
const STEP_TIMEOUT_MS = 30000;

interface Step {
  name: string;
  fn: () => unknown;
}

function createCleanup({ log }: { log: Log }) {
  const steps: Step[] = [];
  let running: Promise<void> | null = null;

  async function runSteps() {
    while (steps.length > 0) {
      const step = steps.pop() as Step;
      try {
        await Promise.race([
          step.fn(),
          sleep(STEP_TIMEOUT_MS, undefined, { ref: false }).then(() => {
            throw new Error(`timed out after ${STEP_TIMEOUT_MS} ms`);
          }),
        ]);
      } catch (err) {
        log(`cleanup: ${step.name} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  const cleanup = {
    /** Registers an undo; the returned function runs it now (and only once). */
    add(name: string, fn: () => unknown): () => Promise<void> {
      const step = { name, fn };
      steps.push(step);
      return async () => {
        const i = steps.indexOf(step);
        if (i === -1) return;
        steps.splice(i, 1);
        await fn();
      };
    },
    run() {
      running ??= runSteps();
      return running;
    },
    /** Ctrl-C / SIGTERM: undo everything, then exit 130. */
    installSignalHandlers(proc: NodeJS.Process) {
      let signalled = false;
      const onSignal = (signal: NodeJS.Signals) => {
        if (signalled) {
          log(`${signal} again: still cleaning up (each step is bounded)`);
          return;
        }
        signalled = true;
        log(`${signal}: stopping and cleaning up`);
        void cleanup.run().finally(() => {
          log('cleaned up');
          proc.exit(130);
        });
      };
      proc.on('SIGINT', () => onSignal('SIGINT'));
      proc.on('SIGTERM', () => onSignal('SIGTERM'));
    },
  };
  return cleanup;
}

export { createCleanup };
