/** Shapes every benchmark mode shares: its options, the cleanup list and the log line. */
import type { createCleanup } from './cleanup';

export type Log = (msg: string) => void;
export type Cleanup = ReturnType<typeof createCleanup>;

export interface Opts {
  mode: 'faults' | 'stalls' | 'overload' | 'reloads' | 'profile' | 'compare';
  reloads: number;
  warmupS: number;
  measureS: number;
  pairs: number;
  baseline: boolean;
  keelEnv: Record<string, string>;
  variantEnv: Record<string, string>;
}

/** What run.ts hands each mode. */
export interface RunDeps {
  opts: Opts;
  cleanup: Cleanup;
  log: Log;
}
