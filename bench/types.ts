/** Shapes every benchmark mode shares: its options, the cleanup list and the log line. */
import type { createCleanup } from './cleanup';

export type Log = (msg: string) => void;
export type Cleanup = ReturnType<typeof createCleanup>;

export interface Opts {
  mode:
    | 'faults'
    | 'failover'
    | 'replicas'
    | 'stalls'
    | 'overload'
    | 'reloads'
    | 'profile'
    | 'compare'
    | 'reads'
    | 'scale'
    | 'growth';
  reloads: number;
  warmupS: number;
  measureS: number;
  pairs: number;
  baseline: boolean;
  keelEnv: Record<string, string>;
  variantEnv: Record<string, string>;
  /** `--reads --ablate a,b`: one more Keel target per layer, with that layer switched off. */
  ablate: string[];
  /** `--profile --reads`: profile under wrk's reads instead of the mixed load. */
  reads: boolean;
  /** `--profile --alloc`: sample what is allocated (bytes per request) instead of CPU time. */
  alloc: boolean;
  overload: OverloadOpts;
  scale: ScaleOpts;
  growth: GrowthOpts;
}

/** The scaling run's matrix (`--scale`): see bench/scale.ts. */
export interface ScaleOpts {
  /** wrk connections, each measured against the same started workers. */
  connections: number[];
  /** Worker counts; each target's workers are started once per count. */
  workers: number[];
}

/** The growth run (`--growth`): see bench/growth.ts. */
export interface GrowthOpts {
  /** The largest table size stepped to (`--growth-max`, 1e3..1e6). */
  maxRows: number;
  /** Its own defaults (a short run: 2 s + 6 s, one pair), unless the flags are given. */
  warmupS: number;
  measureS: number;
  pairs: number;
}

/** The shape of the overload (`--overload`): see bench/overload.ts. */
export interface OverloadOpts {
  /** DB_POOL_MAX: connections a worker. */
  pool: number;
  /** DB_RETRY_BUDGET_MS. */
  budgetMs: number;
  /** REQUEST_TIMEOUT_MS. */
  deadlineMs: number;
  /** Transfers go between these many accounts. */
  hot: number;
  /** Overload steps, in multiples of the clients that saturate the pool. */
  multiples: number[];
  /** Rounds (A B, B A, ...). */
  rounds: number;
  /** Another checkout whose dist/ is measured in the same run (A/B), or null. */
  against: string | null;
}

/** What run.ts hands each mode. */
export interface RunDeps {
  opts: Opts;
  cleanup: Cleanup;
  log: Log;
}
