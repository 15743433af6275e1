/**
 * `npm run bench -- --scale`: the read load of `--reads` (wrk, `GET /api/accounts/:id`) at 8,
 * 32, 128 and 512 connections and 1, 2 and 4 workers, Keel (PM2) and the bare baseline side by
 * side on the same database. Each target's workers start once per worker count and serve every
 * connection count in turn (reads.ts's measureReads, `started`); Keel and the baseline take
 * turns going first from one worker count to the next. Table on stdout, JSON and an HTML page
 * with the chart in bench/results/, a section in bench/LATEST.md (scale-report.ts renders them).
 */
import { createBenchDatabase } from './database';
import { freePort } from './fixtures';
import * as out from './output';
import { intFlag } from './overload';
import { measureReads, restarted, type ReadRun } from './reads';
import {
  bendNotes,
  renderScaleReport,
  scaleMarkdown,
  scaleRows,
  type ScaleCell,
  type ScaleMiss,
  type ScaleReport,
} from './scale-report';
import { createSnapshot } from './snapshot';
import { createBaseline, createKeel, POOL_MAX, type Keel, type Target } from './targets';
import { wrkAvailable } from './wrk';
import type { Opts, RunDeps, ScaleOpts } from './types';

/** The scaling run's flags (parsed in run.ts with the rest). */
export const SCALE_ARGS = {
  scale: { type: 'boolean', default: false },
  'scale-connections': { type: 'string', default: '8,32,128,512' },
  'scale-workers': { type: 'string', default: '1,2,4' },
} as const;

/** Short windows: 12 cells a target; `--warmup-s` / `--measure-s` override them. */
export const SCALE_WINDOWS = { warmupS: 2, measureS: 5 };
const DEFAULT_MATRIX: ScaleOpts = { connections: [8, 32, 128, 512], workers: [1, 2, 4] };

type Flags = Record<string, string | boolean | undefined | string[]>;

/** A comma-separated list of integers lo..hi, deduplicated and ascending. */
function intList(values: Flags, name: string, lo: number, hi: number): number[] {
  const raw = String(values[name] ?? '');
  const list = raw.split(',').map((v) => (v.trim() === '' ? NaN : Number(v)));
  if (list.length === 0 || list.some((v) => !Number.isInteger(v) || v < lo || v > hi)) {
    throw new Error(`--${name} takes integers from ${lo} to ${hi}, comma-separated, not ${raw}`);
  }
  return [...new Set(list)].sort((a, b) => a - b);
}

export function scaleOpts(values: Flags): ScaleOpts {
  return {
    // wrk's one thread keeps 512 connections busy; Postgres holds workers x POOL_MAX of its 100.
    connections: intList(values, 'scale-connections', 1, 4096),
    workers: intList(values, 'scale-workers', 1, 8),
  };
}

/** The warm-up and measure windows: the flag when given, else the mode's default. */
export function windowFlag(values: Flags, name: 'warmup-s' | 'measure-s', fallback: number) {
  return values[name] === undefined
    ? fallback
    : intFlag(values, name, 1, name === 'warmup-s' ? 60 : 300);
}

function toCell(
  run: ReadRun,
  workers: number,
  connections: number,
  restarts: number | null,
): ScaleCell {
  return {
    target: run.target,
    workers,
    connections,
    rps: run.wrk.rps,
    p50Ms: run.wrk.latencyMs.p50,
    p99Ms: run.wrk.latencyMs.p99,
    non2xx: run.wrk.non2xx,
    socketErrors: run.wrk.socketErrors + run.wrk.timeouts,
    appMs: run.cpu.appMs,
    postgresMs: run.cpu.postgresMs,
    wrkMs: run.cpu.wrkMs,
    machineBusy: run.cpu.machineBusy,
    cpuValid: !restarted(run) && run.wrk.requests > 0,
    restarts,
  };
}

/** PM2's restart count of Keel's workers so far; when above 0, the workers' last words. */
async function keelRestarts(keel: Keel, log: RunDeps['log']): Promise<number> {
  const restarts = (await keel.pm2.list())
    .filter((p) => p.name === 'web')
    .reduce((sum, p) => sum + p.restarts, 0);
  if (restarts > 0) log(`keel: ${restarts} worker restart(s) so far\n${keel.lastWords()}`);
  return restarts;
}

const same = (a: number[], b: number[]) => a.join(',') === b.join(',');
const isDefaultScale = (opts: Opts) =>
  opts.warmupS === SCALE_WINDOWS.warmupS &&
  opts.measureS === SCALE_WINDOWS.measureS &&
  same(opts.scale.connections, DEFAULT_MATRIX.connections) &&
  same(opts.scale.workers, DEFAULT_MATRIX.workers) &&
  Object.keys(opts.keelEnv).length === 0;

async function runScale({ opts, cleanup, log }: RunDeps) {
  if (!wrkAvailable()) throw new Error('--scale needs wrk on PATH (Debian: apt-get install wrk)');
  const started = new Date();
  const stamp = out.timestamp(started);
  const app = createSnapshot({ cleanup });
  const db = await createBenchDatabase({ app, cleanup, log });
  const make = async (name: string, workers: number): Promise<Target> =>
    name === 'keel'
      ? createKeel({
          app,
          databaseUrl: db.url,
          port: await freePort(),
          cleanup,
          env: opts.keelEnv,
          workers,
        })
      : createBaseline({
          databaseUrl: db.url,
          port: await freePort(),
          cleanup,
          probePath: `/api/accounts/${db.accounts.lo}`,
          workers,
        });
  const cells: ScaleCell[] = [];
  const missed: ScaleMiss[] = [];
  const miss = (target: string, workers: number, connections: number, err: unknown) => {
    const why = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
    missed.push({ target, workers, connections, why: why.slice(0, 160) });
    log(`[${target}, ${workers} workers, ${connections} connections] not measured: ${err}`);
  };
  const runs: (ReadRun & { workers: number; connections: number })[] = [];
  for (const [round, workers] of opts.scale.workers.entries()) {
    const order = round % 2 === 0 ? ['keel', 'baseline'] : ['baseline', 'keel'];
    for (const name of order) {
      const target = await make(name, workers);
      try {
        await target.start();
        for (const connections of opts.scale.connections) {
          log(`[${name}, ${workers} workers] ${connections} connections`);
          try {
            // PM2 may have replaced a worker since the last cell: measure the live ones.
            if ('refreshPids' in target) await (target as Keel).refreshPids();
            const run = await measureReads({
              target,
              db,
              pair: round + 1,
              opts,
              connections,
              log,
              started: true,
            });
            const restarts = 'pm2' in target ? await keelRestarts(target as Keel, log) : null;
            runs.push({ ...run, workers, connections });
            cells.push(toCell(run, workers, connections, restarts));
            // A long run on a shared box may fail late: what was measured stays on disk.
            out.writeResult(`scale-${stamp}.partial.json`, { cells, runs });
          } catch (err) {
            miss(name, workers, connections, err);
            // A worker that died under the load says why in its logs.
            if ('pm2' in target) await keelRestarts(target as Keel, log).catch(() => 0);
          }
        }
      } catch (err) {
        // A target that did not come up (a loaded box) costs its cells, not the whole run.
        for (const connections of opts.scale.connections) miss(name, workers, connections, err);
      } finally {
        await target.stop().catch((err: unknown) => log(`[${name}] stop: ${err}`));
        if ('kill' in target) await (target as Keel).kill();
      }
    }
  }
  const m = out.machine();
  const report: ScaleReport = {
    startedAt: started.toISOString(),
    nproc: m.nproc,
    warmupS: opts.warmupS,
    measureS: opts.measureS,
    cells,
    missed,
    machineLine: out.machineLine(m, db.serverVersion, app.fingerprint),
  };
  const result = {
    kind: 'scale',
    startedAt: report.startedAt,
    machine: m,
    postgres: db.serverVersion,
    distFingerprint: app.fingerprint,
    config: {
      load: 'wrk, GET /api/accounts/:id of a random seeded account',
      connections: opts.scale.connections,
      workers: opts.scale.workers,
      warmupS: opts.warmupS,
      measureS: opts.measureS,
      poolMaxPerWorker: POOL_MAX,
      keelExtraEnv: opts.keelEnv,
    },
    cells,
    missed,
    runs,
  };
  const file = out.writeResult(`scale-${stamp}.json`, result);
  const html = out.writeResult(`scale-${stamp}.html`, renderScaleReport(report));
  process.stdout.write(
    `\n${out.renderText(scaleRows(cells))}\n\n${bendNotes(cells, m.nproc, missed).join('\n')}\n\n` +
      `machine: ${report.machineLine}\nresults: ${file}\nchart: ${html}\n`,
  );
  const markdown = scaleMarkdown(report);
  if (isDefaultScale(opts)) {
    log(`summary: ${out.updateLatest('scale', markdown)}`);
  } else {
    // A smoke run's section goes next to its results, not into bench/LATEST.md.
    log(`non-default settings: section in ${out.writeResult(`scale-${stamp}.md`, markdown)}`);
  }
  return result;
}

export { runScale };
