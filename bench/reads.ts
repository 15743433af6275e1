/**
 * `npm run bench -- --reads`: read-only load from wrk (bench/wrk.ts), `GET /api/accounts/:id`
 * over 32 keep-alive connections, Keel (PM2, 2 workers) and the bare baseline (node:cluster,
 * 2 workers) alternately, A B A B, on the same database. CPU per answer by process from /proc:
 * each worker, the supervisor (PM2's daemon, which carries Keel's stdout; the baseline's
 * cluster primary), Postgres and wrk itself.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './fixtures';
import { createBenchDatabase } from './database';
import { createSnapshot, type Snapshot } from './snapshot';
import * as out from './output';
import { childrenOf, cpuWindow, readProc } from './sampler';
import { createBaseline, createKeel, POOL_MAX, WORKERS, type Keel, type Target } from './targets';
import { runWrk, wrkAvailable, type WrkResult } from './wrk';
import { ablationTable, type Ablation } from './ablation';
import type { BenchDatabase } from './database';
import type { Log, Opts, RunDeps } from './types';

const CONNECTIONS = 32;

/** A target made fresh for each measurement (Keel: its own PM2 daemon). */
type Make = () => Promise<Target>;
// The CPU window sits inside wrk's run, this far from either end (connects and the last
// answers are not the steady state the per-answer figures describe).
const EDGE_MS = 500;

// The read targets: reported next to the figures, never asserted.
const READ_TARGETS = { cpuRatio: 1.25, rpsRatio: 0.8, p99Ratio: 1.3 };

/** The parent pid of `pid` (the baseline's cluster primary), or null. */
function parentOf(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) || null;
  } catch {
    return null;
  }
}

/** Read and write system calls a process has made so far (/proc/<pid>/io), or 0 when gone. */
function syscalls(pid: number): number {
  try {
    const io = fs.readFileSync(`/proc/${pid}/io`, 'utf8');
    const n = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(io)?.[1] ?? 0);
    return n('syscr') + n('syscw');
  } catch {
    return 0;
  }
}

export interface ReadRun {
  pair: number;
  target: string;
  /** Ablation rounds: the layer whose A/B this run belongs to (full Keel runs next to each). */
  slot?: string;
  wrk: WrkResult;
  loadAvg: number[];
  idleRssMb: number[];
  peakRssMb: number[];
  cpu: {
    windowS: number;
    /** ms of CPU per answer: each worker, all workers, the supervisor, both (the app). */
    workerMs: number[];
    workersMs: number;
    supervisorMs: number;
    appMs: number;
    postgresMs: number;
    wrkMs: number;
    /** read + write system calls per answer, all workers (a cost the box's load cannot blur). */
    syscalls: number;
    machineBusy: number;
    othersShare: number;
  };
}

/** One measurement: fresh workers, a warm-up wrk run, then the measured one. */
async function measureReads({
  target,
  db,
  pair,
  opts,
  connections,
  log,
  started = false,
}: {
  target: Target;
  db: BenchDatabase;
  pair: number;
  opts: Opts;
  connections: number;
  log: Log;
  /** Workers already running (the scaling run, bench/scale.ts): neither started nor stopped here. */
  started?: boolean;
}): Promise<ReadRun> {
  await db.settle();
  const pids = started ? target.pids() : await target.start();
  try {
    // Idle: answering, nothing asked of it yet but the readiness probe.
    await sleep(1000);
    const idleRssMb = pids.map((pid) => (readProc(pid)?.rssKb ?? 0) / 1024);
    const supervisor = target.daemonPid() ?? (pids[0] ? parentOf(pids[0]) : null);
    await runWrk({ port: target.port, connections, seconds: opts.warmupS, accounts: db.accounts });
    const loadAvg = os.loadavg();
    let wrkPid = 0;
    let window: ReturnType<typeof cpuWindow> | null = null;
    let windowS = 0;
    let ended: ReturnType<ReturnType<typeof cpuWindow>['end']> | null = null;
    let calls = 0;
    const allCalls = () => pids.reduce((sum, pid) => sum + syscalls(pid), 0);
    const groups = () => ({
      workers: pids,
      supervisor: supervisor ? [supervisor] : [],
      postgres: db.pids(),
      wrk: wrkPid ? [wrkPid] : [],
      tools: childrenOf(process.pid).filter((p) => p !== wrkPid),
    });
    const timing = (async () => {
      while (!wrkPid) await sleep(10);
      await sleep(EDGE_MS);
      const from = Date.now();
      window = cpuWindow(groups);
      calls = allCalls();
      await sleep(opts.measureS * 1000 - 2 * EDGE_MS);
      ended = window.end();
      calls = allCalls() - calls;
      windowS = (Date.now() - from) / 1000;
    })();
    const wrk = await runWrk({
      port: target.port,
      connections,
      seconds: opts.measureS,
      accounts: db.accounts,
      onStart: (pid) => (wrkPid = pid),
    });
    await timing;
    const cpu = ended as unknown as ReturnType<ReturnType<typeof cpuWindow>['end']>;
    const answers = Math.max(1, wrk.rps * windowS);
    const ms = (s: number) => (s * 1000) / answers;
    const g = cpu.groupsS as Record<string, number>;
    const peakRssMb = pids.map((pid) => (readProc(pid)?.hwmKb ?? 0) / 1024);
    if (peakRssMb.some((mb) => mb === 0))
      log(`[${target.name} #${pair}] a worker went away during the run:\n${target.lastWords?.()}`);
    const run: ReadRun = {
      pair,
      target: target.name,
      wrk,
      loadAvg,
      idleRssMb,
      peakRssMb,
      cpu: {
        windowS,
        workerMs: cpu.perPid.map((p) => ms(p.cpuS)),
        workersMs: ms(g.workers ?? 0),
        supervisorMs: ms(g.supervisor ?? 0),
        appMs: ms((g.workers ?? 0) + (g.supervisor ?? 0)),
        postgresMs: ms(g.postgres ?? 0),
        wrkMs: ms(g.wrk ?? 0),
        syscalls: calls / answers,
        machineBusy: cpu.machineBusy,
        othersShare: cpu.othersShare,
      },
    };
    log(
      `[${target.name} #${pair}] ${wrk.rps.toFixed(0)} req/s, p99 ${wrk.latencyMs.p99.toFixed(1)} ms, ` +
        `app CPU ${run.cpu.appMs.toFixed(3)} ms/req (workers ${run.cpu.workerMs
          .map((v) => v.toFixed(3))
          .join('/')}, supervisor ${run.cpu.supervisorMs.toFixed(3)}), ` +
        `${run.cpu.syscalls.toFixed(2)} syscalls/req, non-2xx ${wrk.non2xx}, ` +
        `socket errors ${wrk.socketErrors}, load ${loadAvg.map((v) => v.toFixed(2)).join(' ')}`,
    );
    return run;
  } finally {
    if (!started) await target.stop();
  }
}

const f = (v: number, d = 1) => v.toFixed(d);

/**
 * A worker replaced inside the measured window (PM2 restarted it: seen on a box at load 20+)
 * leaves its CPU unreadable: 0 or less. Such a run is shown, flagged, and left out of the
 * ablation's differences.
 */
const restarted = (r: ReadRun) => r.cpu.workerMs.some((v) => v <= 0);

function readRows(runs: ReadRun[]): out.Rows {
  const header = [
    'run',
    'target',
    'req/s',
    'p50 ms',
    'p90 ms',
    'p99 ms',
    'max ms',
    'non-2xx',
    'sock err',
    'idle RSS/worker MB',
    'CPU ms/req app',
    'workers',
    'supervisor',
    'PG ms/req',
    'wrk ms/req',
    'syscalls/req',
    'box busy',
    'others',
    'load 1m',
  ];
  const rows = runs.map((r) => [
    String(r.pair),
    (r.slot && r.target === 'keel' ? `keel (A/B -${r.slot})` : r.target) +
      (restarted(r) ? ' (worker restarted: CPU invalid)' : ''),
    f(r.wrk.rps, 0),
    f(r.wrk.latencyMs.p50),
    f(r.wrk.latencyMs.p90),
    f(r.wrk.latencyMs.p99),
    f(r.wrk.latencyMs.max),
    String(r.wrk.non2xx),
    String(r.wrk.socketErrors + r.wrk.timeouts),
    r.idleRssMb.map((v) => f(v, 0)).join(' / '),
    f(r.cpu.appMs, 3),
    r.cpu.workerMs.map((v) => f(v, 3)).join(' / '),
    f(r.cpu.supervisorMs, 3),
    f(r.cpu.postgresMs, 3),
    f(r.cpu.wrkMs, 3),
    f(r.cpu.syscalls, 2),
    `${Math.round(r.cpu.machineBusy * 100)} %`,
    `${Math.round(r.cpu.othersShare * 100)} %`,
    f(r.loadAvg[0] ?? 0, 2),
  ]);
  return [header, ...rows];
}

function readPairRows(runs: ReadRun[]): out.Rows {
  const header = [
    'pair / target',
    'CPU/req keel/base',
    'req/s keel/base',
    'p99 keel/base',
    'targets',
  ];
  const rows: string[][] = [];
  for (const keel of runs.filter((r) => r.target !== 'baseline')) {
    const base = runs.find((r) => r.target === 'baseline' && r.pair === keel.pair);
    if (!base) continue;
    const cpu = keel.cpu.appMs / base.cpu.appMs;
    const rps = keel.wrk.rps / base.wrk.rps;
    const p99 = keel.wrk.latencyMs.p99 / base.wrk.latencyMs.p99;
    const misses = [];
    const invalid = restarted(keel) || restarted(base);
    if (!invalid && cpu > READ_TARGETS.cpuRatio) misses.push('CPU');
    if (rps < READ_TARGETS.rpsRatio) misses.push('throughput');
    if (p99 > READ_TARGETS.p99Ratio) misses.push('p99');
    rows.push([
      `${keel.pair} ${keel.target}`,
      invalid ? 'invalid (worker restarted)' : `${f(cpu, 2)}x`,
      `${f(rps, 2)}x`,
      `${f(p99, 2)}x`,
      misses.length ? `missed: ${misses.join(', ')}` : 'all met',
    ]);
  }
  return [header, ...rows];
}

/** Keel with --variant's environment. */
function extraTargets(opts: Opts): [string, Record<string, string>][] {
  const extra: [string, Record<string, string>][] = [];
  if (Object.keys(opts.variantEnv).length) {
    const label = Object.entries(opts.variantEnv)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    extra.push([`keel ${label}`, opts.variantEnv]);
  }
  return extra;
}

/** The ablation's view of the runs (bench/ablation.ts does the arithmetic). */
function ablationOf(runs: ReadRun[], layers: string[]): Ablation {
  return ablationTable(
    runs.map((r) => ({
      target: r.target,
      appMs: r.cpu.appMs,
      rps: r.wrk.rps,
      valid: !restarted(r),
    })),
    layers,
  );
}

async function runReads({ opts, cleanup, log }: RunDeps) {
  if (!wrkAvailable()) throw new Error('--reads needs wrk on PATH (Debian: apt-get install wrk)');
  const started = new Date();
  const app = createSnapshot({ cleanup });
  const db = await createBenchDatabase({ app, cleanup, log });
  const baseline = createBaseline({
    databaseUrl: db.url,
    port: await freePort(),
    cleanup,
    probePath: `/api/accounts/${db.accounts.lo}`,
  });
  // Every Keel measurement gets its own PM2 daemon, killed after it: on a loaded box a second
  // start in the same daemon was seen to hang with its workers restarting (exit 0).
  const keelWith =
    (name: string, env: Record<string, string>, from: Snapshot = app): Make =>
    async () =>
      createKeel({
        app: from,
        databaseUrl: db.url,
        port: await freePort(),
        cleanup,
        env: { ...opts.keelEnv, ...env },
        name,
      });
  const full: { name: string; make: Make }[] = [
    { name: 'keel', make: keelWith('keel', {}) },
    { name: 'baseline', make: () => Promise.resolve(baseline) },
  ];
  for (const [name, env] of extraTargets(opts)) full.push({ name, make: keelWith(name, env) });
  if (opts.overload.against) {
    // Another checkout's dist/ next to this one's: an A/B of two versions of the code.
    const dir = path.resolve(opts.overload.against);
    const name = `keel@${path.basename(dir)}`;
    full.push({ name, make: keelWith(name, {}, createSnapshot({ cleanup, from: dir })) });
  }
  const runs: ReadRun[] = [];
  const partial = `reads-${out.timestamp(started)}.partial.json`;
  const measure = async (make: Make, pair: number, slot?: string) => {
    const target = await make();
    try {
      const run = await measureReads({ target, db, pair, opts, connections: CONNECTIONS, log });
      runs.push(slot ? { ...run, slot } : run);
      // A long run on a shared box may fail late: what was measured stays on disk.
      out.writeResult(partial, runs);
    } catch (err) {
      // One target that did not come up (a loaded box) costs its row, not the whole run.
      log(`[${target.name} #${pair}] not measured: ${err instanceof Error ? err.message : err}`);
    } finally {
      if ('kill' in target) await (target as Keel).kill();
    }
  };
  for (let pair = 1; pair <= opts.pairs; pair++) {
    for (const t of full) await measure(t.make, pair);
    // Each layer's A/B is measured back to back (full Keel, then without the layer): the box
    // drifts more over a round of nine layers than any layer costs.
    // Full Keel between every two layers (K L1 K L2 … K): a layer's runs sit among full ones,
    // and the full runs of the session make the reference (bench/ablation.ts).
    for (const [i, layer] of opts.ablate.entries()) {
      if (i > 0) await measure(keelWith('keel', {}), pair, layer);
      await measure(keelWith(`keel -${layer}`, { KEEL_BENCH_ABLATE: layer }), pair, layer);
    }
    if (opts.ablate.length) await measure(keelWith('keel', {}), pair, 'end');
  }
  const m = out.machine();
  const result = {
    kind: 'reads',
    startedAt: started.toISOString(),
    machine: m,
    postgres: db.serverVersion,
    distFingerprint: app.fingerprint,
    config: {
      connections: CONNECTIONS,
      load: 'wrk, GET /api/accounts/:id of a random seeded account',
      warmupS: opts.warmupS,
      measureS: opts.measureS,
      workers: WORKERS,
      poolMaxPerWorker: POOL_MAX,
      keelExtraEnv: opts.keelEnv,
      targets: full.map((t) => t.name),
      ablate: opts.ablate,
    },
    targets: READ_TARGETS,
    runs,
  };
  const file = out.writeResult(`reads-${out.timestamp(started)}.json`, result);
  const runTable = readRows(runs);
  const pairTable = readPairRows(runs);
  const ablation = opts.ablate.length ? ablationOf(runs, opts.ablate) : null;
  const floor = ablation
    ? `full Keel: ${ablation.full.n} runs, median ${ablation.full.medianMs.toFixed(3)} ms/req, ` +
      `interquartile ${ablation.full.q1.toFixed(3)}-${ablation.full.q3.toFixed(3)} (the noise floor)`
    : '';
  process.stdout.write(
    `\n${out.renderText(runTable)}\n\n${out.renderText(pairTable, 1)}\n\n` +
      (ablation ? `${out.renderText(ablation.rows, 1)}\n${floor}\n\n` : '') +
      `targets: keel/baseline CPU per request <= ${READ_TARGETS.cpuRatio}x, req/s >= ` +
      `${READ_TARGETS.rpsRatio}x, p99 <= ${READ_TARGETS.p99Ratio}x (reported, not asserted)\n` +
      `machine: ${out.machineLine(m, db.serverVersion, app.fingerprint)}\nresults: ${file}\n`,
  );
  if (ablation) {
    out.updateLatest(
      'ablation',
      [
        `## The ablation table (\`npm run bench -- --reads --ablate ${opts.ablate.join(',')}\`, ` +
          `${started.toISOString().slice(0, 16)}Z)`,
        '',
        `The read load above (wrk, ${CONNECTIONS} connections, ${opts.warmupS} s warm-up + ` +
          `${opts.measureS} s measured), ${opts.pairs} rounds of: full Keel, the baseline, then ` +
          'each layer switched off in turn (KEEL_BENCH_ABLATE) with full Keel between every two. ' +
          "Marginal CPU: the median of all full-Keel runs minus the median of the layer's runs; " +
          `${floor}. A difference inside that range, or one whose runs fall on both sides of the ` +
          'full median, is not resolved by this method ' +
          '(docs/benchmarks.md, the ablation table).',
        '',
        out.renderMarkdown(ablation.rows, 1),
        '',
        out.renderMarkdown(runTable),
        '',
        `Machine: ${out.machineLine(m, db.serverVersion, app.fingerprint)}.`,
      ].join('\n'),
    );
  }
  if (!out.isDefaultRun(opts) || opts.ablate.length > 0) {
    log('non-default settings: bench/LATEST.md left as it is');
    return result;
  }
  const latest = out.updateLatest(
    'reads',
    [
      `## Reads through wrk (\`npm run bench -- --reads\`, ${started.toISOString().slice(0, 16)}Z)`,
      '',
      `wrk (one thread, its own process), ${CONNECTIONS} keep-alive connections, ` +
        '`GET /api/accounts/:id` of a random seeded account; ' +
        `${opts.warmupS} s warm-up + ${opts.measureS} s measured per run, ${WORKERS} workers and ` +
        `${POOL_MAX} connections per worker each, A B A B. CPU ms/req from /proc over the ` +
        "measured window: app = the workers + their supervisor (Keel: PM2's daemon, which " +
        "carries the workers' stdout; baseline: its cluster primary). Idle RSS: each worker 1 s " +
        'after it answered its first request. load 1m: the load average when the measured run began.',
      '',
      out.renderMarkdown(runTable),
      '',
      out.renderMarkdown(pairTable, 1),
      '',
      `Machine: ${out.machineLine(m, db.serverVersion, app.fingerprint)}.`,
    ].join('\n'),
  );
  log(`summary: ${latest}`);
  return result;
}

export { runReads, measureReads, restarted };
