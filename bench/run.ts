/**
 * `npm run bench` [-- --faults | --failover | --replicas | --stalls | --profile [--baseline]] [--warmup-s N] [--measure-s N] [--pairs N]
 *
 *   (default)   Keel vs the bare baseline, A B A B: table on stdout, JSON in bench/results/,
 *               summary in bench/LATEST.md.
 *   --faults    Keel alone under the same load while faults are injected; HTML timeline in
 *               bench/results/faults-<ts>.html (and bench/faults-report.png when chromium exists).
 *   --stalls    Keel, then the bare baseline, each through its own holding fault proxy, stalled
 *               2, 6.5 and 15 s under the same load, against a Postgres whose max_connections is
 *               Keel's budget + 2: max server connections, connections opened during the stall,
 *               first 2xx after the heal, errors, `too many clients` (bench/LATEST.md).
 *   --overload  keyless transfers on two hot accounts, 2 connections a worker, 300 ms budget:
 *               capacity, then 10x and 50x the clients; goodput, p99, 503s found applied (0).
 *               Its shape: --pool N (DB_POOL_MAX), --budget-ms N (DB_RETRY_BUDGET_MS),
 *               --deadline-ms N (REQUEST_TIMEOUT_MS), --hot N (hot accounts), --x 20,50
 *               (multiples of the saturating clients), --against DIR (another checkout's dist/,
 *               A B alternated) and --rounds N.
 *   --failover  a switchover and a crash failover against a real streaming standby behind one
 *               moving address (bench/failover.ts): error attempts, 503s, first 2xx after the promote.
 *   --replicas  one Keel worker reading from 0, 1 and 2 hot standbys (DATABASE_READ_URL), 90 %
 *               token-carrying reads, 10 % transfers: 2xx/s and p99 side by side (bench/replicas.ts).
 *   --reloads N Keel under the same load while `pm2 reload web` runs N times: failed requests per
 *               reload (the zero-drop soak), in bench/LATEST.md.
 *   --reads     read-only load from wrk (GET /api/accounts/:id, 32 connections), Keel vs the
 *               baseline A B A B: req/s, p99, CPU per request by process (bench/reads.ts).
 *               --ablate a,b: each layer off in turn, full Keel between (bench/ablation.ts).
 *   --scale     the --reads load at 8, 32, 128 and 512 connections and 1, 2 and 4 workers, Keel
 *               and the baseline side by side (bench/scale.ts): req/s, p99, CPU per request, an
 *               SVG chart in bench/results/scale-*.html. 2 s + 5 s a cell unless --warmup-s /
 *               --measure-s; --scale-connections 8,32 and --scale-workers 1,2 narrow the matrix.
 *   --growth    the mixed load on one database grown step by step: accounts 1e3, 1e5, 1e6 rows,
 *               then idempotency keys 0, 1e5, 1e6 with the sweep running; Keel and the baseline
 *               at each step: 2xx/s, p99, CPU per answer, table sizes (bench/growth.ts). 2 s + 6 s
 *               per run unless --warmup-s/--measure-s; --growth-max 1e5 stops at that size.
 *   --profile   One Keel worker run directly with --cpu-prof under the same load; prints where
 *               the CPU time goes (--baseline: one baseline worker, for comparison; --reads:
 *               under wrk's reads; --alloc: bytes allocated per request, by owner, instead).
 *
 *   --keel-env NAME=value   (repeatable) extra environment for Keel's workers, to measure what a
 *               setting would change (e.g. LOG_LEVEL=warn) without editing anything.
 *   --variant NAME=value    (repeatable) adds a third target to every round: Keel with this
 *               environment, next to plain Keel and the baseline (A B C A B C).
 *
 * Everything started is stopped on the way out, also on failure and Ctrl-C.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createCleanup } from './cleanup';
import { runCompare } from './compare';
import { runFailover } from './failover';
import { runFaults } from './faults';
import { GROWTH_ARGS, growthOpts } from './growth-plan';
import { runGrowth } from './growth';
import { DEFAULTS } from './output';
import { intFlag, OVERLOAD_ARGS, overloadOpts, runOverload } from './overload';
import { runProfile } from './profile';
import { runReads } from './reads';
import { runReloads } from './reloads';
import { runReplicas } from './replicas';
import { runScale, SCALE_ARGS, SCALE_WINDOWS, scaleOpts, windowFlag } from './scale';
import { runStalls } from './stalls';
import type { Log, Opts, RunDeps } from './types';

const MODES: Record<Opts['mode'], (deps: RunDeps) => Promise<unknown>> = {
  faults: runFaults,
  failover: runFailover,
  stalls: runStalls,
  overload: runOverload,
  reloads: runReloads,
  replicas: runReplicas,
  profile: runProfile,
  compare: runCompare,
  reads: runReads,
  scale: runScale,
  growth: runGrowth,
};

import { ROOT } from './fixtures';

function envPairs(flag: string, list: string[]): Record<string, string> {
  return Object.fromEntries(
    list.map((kv): [string, string] => {
      const i = kv.indexOf('=');
      if (i < 1) throw new Error(`--${flag} takes NAME=value, not ${kv}`);
      return [kv.slice(0, i), kv.slice(i + 1)];
    }),
  );
}

function options(argv: string[]): Opts {
  const { values } = parseArgs({
    args: argv,
    options: {
      faults: { type: 'boolean', default: false },
      failover: { type: 'boolean', default: false },
      replicas: { type: 'boolean', default: false },
      stalls: { type: 'boolean', default: false },
      overload: { type: 'boolean', default: false },
      reloads: { type: 'string' },
      profile: { type: 'boolean', default: false },
      reads: { type: 'boolean', default: false },
      alloc: { type: 'boolean', default: false },
      ablate: { type: 'string', default: '' },
      baseline: { type: 'boolean', default: false },
      'keel-env': { type: 'string', multiple: true, default: [] },
      variant: { type: 'string', multiple: true, default: [] },
      // No default here: --scale has shorter windows of its own (windowFlag).
      'warmup-s': { type: 'string' },
      'measure-s': { type: 'string' },
      pairs: { type: 'string', default: String(DEFAULTS.pairs) },
      ...OVERLOAD_ARGS,
      ...SCALE_ARGS,
      ...GROWTH_ARGS,
    },
  });
  const int = (name: 'reloads' | 'pairs', lo: number, hi: number) => intFlag(values, name, lo, hi);
  const mode: Opts['mode'] = values.scale
    ? 'scale'
    : values.faults
      ? 'faults'
      : values.failover
        ? 'failover'
        : values.replicas
          ? 'replicas'
          : values.stalls
            ? 'stalls'
            : values.overload
              ? 'overload'
              : values.reloads !== undefined
                ? 'reloads'
                : values.profile
                  ? 'profile'
                  : values.reads
                    ? 'reads'
                    : values.growth
                      ? 'growth'
                      : 'compare';
  const windows = mode === 'scale' ? SCALE_WINDOWS : DEFAULTS;
  return {
    mode,
    reloads: values.reloads === undefined ? 0 : int('reloads', 1, 500),
    warmupS: windowFlag(values, 'warmup-s', windows.warmupS),
    measureS: windowFlag(values, 'measure-s', windows.measureS),
    pairs: int('pairs', 1, 10),
    baseline: values.baseline,
    keelEnv: envPairs('keel-env', values['keel-env']),
    variantEnv: envPairs('variant', values.variant),
    reads: values.reads,
    alloc: values.alloc,
    ablate: values.ablate ? values.ablate.split(',').filter(Boolean) : [],
    overload: overloadOpts(values),
    scale: scaleOpts(values),
    growth: growthOpts(argv, values),
  };
}

/** Benchmarks measure dist/ as built; a fresh clone has none yet, so build it then. */
function ensureBuilt(log: Log): void {
  const main = path.join(ROOT, 'dist', 'main.js');
  if (!fs.existsSync(main)) {
    log('dist/ is missing: running npm run build');
    execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
    return;
  }
  const built = fs.statSync(main).mtimeMs;
  const newer = fs
    .readdirSync(path.join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .some((f) => fs.statSync(path.join(ROOT, 'src', f)).mtimeMs > built);
  if (newer) log('note: src/ has changes newer than dist/ (run `npm run build` to measure them)');
}

async function main() {
  const opts = options(process.argv.slice(2));
  const t0 = Date.now();
  const log: Log = (msg) =>
    process.stdout.write(`${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s  ${msg}\n`);
  ensureBuilt(log);
  const cleanup = createCleanup({ log });
  cleanup.installSignalHandlers(process);
  let code = 0;
  try {
    await MODES[opts.mode]({ opts, cleanup, log });
  } catch (err) {
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    code = 1;
  } finally {
    log('cleaning up');
    await cleanup.run();
  }
  log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  process.exit(code);
}

void main();
