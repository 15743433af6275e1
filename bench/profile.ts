/**
 * `npm run bench -- --profile [--baseline]`: CPU profiles under the benchmark's load, and where
 * the time went.
 *  - keel (default): the real PM2 cluster (2 workers, ecosystem.config.js), every process
 *    profiled by bench/cpu-prof-preload.ts, so the workers run exactly as in the benchmark, with what PM2
 *    injects; the busier worker and the PM2 daemon (which carries the workers' stdout to the
 *    log file) are analysed. Requests per worker come from Keel's own access log.
 *  - --baseline: one baseline worker (node:cluster passes --cpu-prof on), to compare.
 * Profiles stay in bench/results/profile-<target>-<ts>/ for Chrome DevTools or speedscope.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BENCH, ROOT, freePort } from './fixtures';
import { analyseProfile, renderProfile } from './cpuprofile';
import { createBenchDatabase } from './database';
import { createSnapshot } from './snapshot';
import { CONNECTIONS, startLoad } from './load';
import * as out from './output';
import { watchLoad } from './progress';
import { summarise } from './stats';
import { runWrk } from './wrk';
import { POOL_MAX, createKeel, waitAnswering, waitGone } from './targets';
import type { Analysis } from './cpuprofile';
import type { BenchDatabase } from './database';
import type { Snapshot } from './snapshot';
import type { Cleanup, Log, Opts, RunDeps } from './types';

/** What each profiling target gets. */
interface ProfileDeps {
  app: Snapshot;
  db: BenchDatabase;
  dir: string;
  opts: Opts;
  cleanup: Cleanup;
  log: Log;
}

interface Profiled {
  role: string;
  requests: number;
  analysis: Analysis;
}

/** The profiles written to `dir`: CPU (.cpuprofile) or, with `--alloc`, heap (.heapprofile). */
function profiles(dir: string, alloc: boolean): { file: string; pid: number }[] {
  const ext = alloc ? '.heapprofile' : '.cpuprofile';
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(ext))
    .map((f) => ({
      file: path.join(dir, f),
      pid: Number(/(\d+)(?:\.0\.\d+)?\.(?:cpu|heap)profile$/.exec(f)?.[1]),
    }));
}

const PRELOAD = path.join(__dirname, 'cpu-prof-preload.js');

/** Access-log lines per worker pid: how many requests each worker answered. */
function requestsPerPid(logFile: string): Map<number, number> {
  const counts = new Map<number, number>();
  for (const line of fs.readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('"msg":"request"')) continue;
    const pid = Number(/"pid":(\d+)/.exec(line)?.[1]);
    counts.set(pid, (counts.get(pid) ?? 0) + 1);
  }
  return counts;
}

/**
 * Runs the load for warm-up + measure seconds: the benchmark's mixed load, or with `--reads`
 * wrk's reads. Returns answers per second, p99 and how many answers the whole run got.
 */
async function drive({
  port,
  db,
  opts,
  label,
  pids,
  cleanup,
}: {
  port: number;
  db: BenchDatabase;
  opts: Opts;
  label: string;
  pids: () => number[];
  cleanup: Cleanup;
}): Promise<{ opsPerS: number; p99: number | null; total: number }> {
  if (opts.reads) {
    const wrk = await runWrk({
      port,
      connections: CONNECTIONS,
      seconds: opts.warmupS + opts.measureS,
      accounts: db.accounts,
    });
    return { opsPerS: wrk.rps, p99: wrk.latencyMs.p99, total: wrk.requests };
  }
  const load = startLoad({
    port,
    connections: CONNECTIONS,
    accounts: db.accounts,
    keyPrefix: `profile-${Date.now()}`,
  });
  const stopLoad = watchLoad({ cleanup, label, load, pids, phase: () => 'profiling' });
  await sleep((opts.warmupS + opts.measureS) * 1000);
  const end = load.elapsed();
  await stopLoad();
  const summary = summarise(load.recorder.view(), opts.warmupS * 1000, end);
  return { opsPerS: summary.opsPerS, p99: summary.latencyMs.p99, total: load.recorder.size() };
}

async function profileKeel({ app, db, dir, opts, cleanup, log }: ProfileDeps) {
  const keel = createKeel({
    app,
    databaseUrl: db.url,
    port: await freePort(),
    cleanup,
    env: {
      ...opts.keelEnv,
      NODE_OPTIONS: `${opts.keelEnv.NODE_OPTIONS ?? ''} --require ${PRELOAD}`,
      KEEL_BENCH_PROF_DIR: dir,
      ...(opts.alloc ? { KEEL_BENCH_PROF_KIND: 'alloc' } : {}),
    },
  });
  const pids = await keel.start();
  const daemon = keel.daemonPid();
  log(`[profile] keel workers ${pids.join(', ')} (PM2 daemon ${daemon}) ready`);
  const summary = await drive({
    port: keel.port,
    db,
    opts,
    label: 'profile keel',
    pids: keel.pids,
    cleanup,
  });
  const perPid = requestsPerPid(keel.logFile());
  // Graceful stop: each worker ends in process.exit, which writes its profile; so does the daemon.
  await keel.stop();
  await keel.kill();
  // `pm2 kill` returns before the daemon has finished exiting (and writing its profile).
  if (daemon) await waitGone([daemon], 10000);
  const all = profiles(dir, opts.alloc);
  const workers = all
    .filter((p) => pids.includes(p.pid))
    .sort((a, b) => (perPid.get(b.pid) ?? 0) - (perPid.get(a.pid) ?? 0));
  // Without access-log lines (LOG_LEVEL above info) the answers are split evenly: an estimate.
  const total = summary.total;
  const share = (pid: number) => perPid.get(pid) ?? Math.round(total / pids.length);
  const results: Profiled[] = [];
  if (workers[0]) {
    const requests = share(workers[0].pid);
    results.push({
      role: `keel worker ${workers[0].pid}`,
      requests,
      analysis: analyseProfile(workers[0].file),
    });
  }
  const god = all.find((p) => p.pid === daemon);
  if (god) {
    const requests = perPid.size ? [...perPid.values()].reduce((a, b) => a + b, 0) : total;
    results.push({ role: `PM2 daemon ${daemon}`, requests, analysis: analyseProfile(god.file) });
  }
  return { summary, results };
}

async function profileBaseline({ db, dir, opts, cleanup, log }: ProfileDeps) {
  const port = await freePort();
  const logFd = fs.openSync(path.join(dir, 'baseline.log'), 'w');
  // --alloc: the preload in every process (the cluster worker inherits it), sampling from the
  // first request; else V8's own --cpu-prof.
  const flags = opts.alloc ? ['--require', PRELOAD] : ['--cpu-prof', `--cpu-prof-dir=${dir}`];
  const child = spawn(process.execPath, [...flags, path.join(__dirname, 'baseline.js')], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...(opts.alloc ? { KEEL_BENCH_PROF_DIR: dir, KEEL_BENCH_PROF_KIND: 'alloc' } : {}),
      BASELINE_DATABASE_URL: db.url,
      BASELINE_PORT: String(port),
      BASELINE_WORKERS: '1',
      BASELINE_POOL_MAX: String(POOL_MAX),
    },
    stdio: ['ignore', logFd, logFd, 'ipc'],
  });
  fs.closeSync(logFd);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const undo = cleanup.add('stop profiled baseline', async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  });
  await waitAnswering(port, `/api/accounts/${db.accounts.lo}`, 60000);
  log(`[profile] one baseline worker ready`);
  const summary = await drive({
    port,
    db,
    opts,
    label: 'profile baseline',
    pids: () => [],
    cleanup,
  });
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(30000)]);
  await undo();
  // The primary writes a (tiny) profile too: the worker's is the largest.
  const [worker] = profiles(dir, opts.alloc).sort(
    (a, b) => fs.statSync(b.file).size - fs.statSync(a.file).size,
  );
  if (!worker) throw new Error(`no profile written in ${dir}`);
  return {
    summary,
    results: [
      {
        role: 'baseline worker',
        requests: summary.total,
        analysis: analyseProfile(worker.file),
      },
    ],
  };
}

async function runProfile({ opts, cleanup, log }: RunDeps) {
  const app = createSnapshot({ cleanup });
  const db = await createBenchDatabase({ app, cleanup, log });
  const target = opts.baseline ? 'baseline' : 'keel';
  const dir = path.join(BENCH, 'results', `profile-${target}-${out.timestamp()}`);
  fs.mkdirSync(dir, { recursive: true });
  const run = opts.baseline ? profileBaseline : profileKeel;
  const { summary, results } = await run({ app, db, dir, opts, cleanup, log });
  log(
    `[profile] ${target}${opts.reads ? ' (wrk reads)' : ''}: ${summary.opsPerS.toFixed(0)} ` +
      `ops/s, p99 ${summary.p99?.toFixed(1)} ms (profiling slows it down a little)`,
  );
  for (const r of results) {
    process.stdout.write(`\n== ${r.role}\n${renderProfile(r.analysis, r.requests)}\n`);
  }
  fs.writeFileSync(
    path.join(dir, 'summary.json'),
    JSON.stringify({ target, summary, results }, null, 2),
  );
  log(`profiles and summary: ${dir}`);
}

export { runProfile };
