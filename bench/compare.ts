/**
 * `npm run bench`: Keel (PM2, 2 workers) and the baseline (node:cluster, 2 workers) measured one
 * after the other on the same database, alternating A B A B so drift of the machine shows.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './fixtures';
import { setUpKeel } from './setup';
import { CONNECTIONS, startLoad } from './load';
import * as out from './output';
import { watchLoad } from './progress';
import { childrenOf, cpuWindow, readProc, startSampler } from './sampler';
import { summarise } from './stats';
import { createBaseline, createKeel, POOL_MAX, WORKERS, type Target } from './targets';
import type { BenchDatabase } from './database';
import type { RunRow } from './output';
import type { Cleanup, Log, Opts, RunDeps } from './types';

/** One measurement: fresh workers, warm-up, measured window, workers stopped again. */
async function measure({
  target,
  db,
  pair,
  opts,
  cleanup,
  log,
}: {
  target: Target;
  db: BenchDatabase;
  pair: number;
  opts: Opts;
  cleanup: Cleanup;
  log: Log;
}) {
  await db.settle();
  log(`[${target.name} #${pair}] starting`);
  const starting = Date.now();
  const pids = await target.start();
  const startS = (Date.now() - starting) / 1000;
  const daemon = target.daemonPid();
  const groups = () => ({
    workers: target.pids(),
    daemon: daemon ? [daemon] : [],
    postgres: db.pids(),
    tools: childrenOf(process.pid),
  });
  const idleRssKb = pids.map((pid) => readProc(pid)?.rssKb ?? 0);
  const sampler = startSampler(() => target.pids());
  const load = startLoad({
    port: target.port,
    connections: CONNECTIONS,
    accounts: db.accounts,
    keyPrefix: `bench-${target.name}-${pair}-${Date.now()}`,
  });
  let phase = 'warm-up';
  const stopLoad = watchLoad({
    cleanup,
    label: `${target.name} #${pair}`,
    load,
    pids: target.pids,
    phase: () => phase,
  });
  let window: { from: number; to: number } | undefined;
  let cpu;
  try {
    await sleep(opts.warmupS * 1000);
    phase = 'measuring';
    window = { from: load.elapsed() } as { from: number; to: number };
    cpu = cpuWindow(groups);
    await sleep(opts.measureS * 1000);
    window.to = load.elapsed();
    cpu = cpu.end();
  } finally {
    await stopLoad();
  }
  const memory = sampler.stop().filter((m) => pids.includes(m.pid));
  const stopping = Date.now();
  await target.stop();
  const stopS = (Date.now() - stopping) / 1000;

  const { recorder, errorCodes } = await load.done;
  const summary = summarise(recorder.view(), window.from, window.to);
  const answered = Math.max(1, summary.answered);
  const perOp = (s: number) => (s * 1000) / answered;
  const run = {
    pair,
    target: target.name,
    window,
    summary,
    errorCodes,
    memory,
    idleRssKb,
    startS,
    stopS,
    cpu: {
      perPid: cpu.perPid,
      secondsByGroup: cpu.groupsS,
      msPerOp: perOp(cpu.groupsS.workers),
      daemonMsPerOp: daemon ? perOp(cpu.groupsS.daemon) : null,
      postgresMsPerOp: perOp(cpu.groupsS.postgres),
      loadGenMsPerOp: perOp(cpu.groupsS.loadgen),
      machineBusy: cpu.machineBusy,
      othersShare: cpu.othersShare,
    },
  };
  const l = summary.latencyMs;
  log(
    `[${target.name} #${pair}] ${summary.opsPerS.toFixed(0)} ops/s, p50 ${l.p50?.toFixed(1)} ms, ` +
      `p99 ${l.p99?.toFixed(1)} ms, non-2xx ${summary.non2xx}, socket errors ${summary.socketErrors}, ` +
      `peak RSS ${memory.map((m) => (m.hwmKb / 1024).toFixed(0)).join('/')} MB ` +
      `(start ${startS.toFixed(1)} s, stop ${stopS.toFixed(1)} s)`,
  );
  return run;
}

function pairUp(runs: RunRow[]) {
  const pairs = [];
  for (const keel of runs.filter((r) => r.target.startsWith('keel'))) {
    const base = runs.find((r) => r.target === 'baseline' && r.pair === keel.pair);
    if (!base) continue;
    pairs.push({
      pair: keel.pair,
      target: keel.target,
      opsRatio: keel.summary.opsPerS / base.summary.opsPerS,
      p99Ratio: Number(keel.summary.latencyMs.p99) / Number(base.summary.latencyMs.p99),
      keelPeakRssMb: Math.max(...keel.memory.map((m) => m.hwmKb)) / 1024,
      baselinePeakRssMb: Math.max(...base.memory.map((m) => m.hwmKb)) / 1024,
    });
  }
  return pairs;
}

async function runCompare({ opts, cleanup, log }: RunDeps) {
  const started = new Date();
  const { app, db, keel } = await setUpKeel({ opts, cleanup, log });
  // The idempotency table must stay bounded (generated keys expire in minutes, client keys in 48 h).
  const keysBefore = (await db.counts()).keys;
  if (Object.keys(opts.keelEnv).length) log(`keel extra env: ${JSON.stringify(opts.keelEnv)}`);
  const baseline = createBaseline({
    databaseUrl: db.url,
    port: await freePort(),
    cleanup,
    probePath: `/api/accounts/${db.accounts.lo}`,
  });
  const targets = [keel, baseline];
  if (Object.keys(opts.variantEnv).length) {
    const label = Object.entries(opts.variantEnv)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    targets.push(
      createKeel({
        app,
        databaseUrl: db.url,
        port: await freePort(),
        cleanup,
        env: { ...opts.keelEnv, ...opts.variantEnv },
        name: `keel ${label}`,
      }),
    );
  }
  const runs = [];
  for (let pair = 1; pair <= opts.pairs; pair++) {
    for (const target of targets) {
      runs.push(await measure({ target, db, pair, opts, cleanup, log }));
    }
  }
  const counts = await db.counts();
  const pairs = pairUp(runs);
  const m = out.machine();
  const result = {
    kind: 'compare',
    startedAt: started.toISOString(),
    durationS: (Date.now() - started.getTime()) / 1000,
    machine: m,
    postgres: db.serverVersion,
    distFingerprint: app.fingerprint,
    config: {
      connections: CONNECTIONS,
      mix: '50% GET /api/accounts/:id, 50% POST /api/transfers with a fresh Idempotency-Key',
      warmupS: opts.warmupS,
      measureS: opts.measureS,
      workers: WORKERS,
      poolMaxPerWorker: POOL_MAX,
      keelExtraEnv: opts.keelEnv,
      variantEnv: opts.variantEnv,
      accounts: db.accounts.hi - db.accounts.lo + 1,
    },
    targets: out.TARGETS,
    runs,
    pairs,
    database: { ...counts, keysBefore },
  };
  const file = out.writeResult(`${out.timestamp(started)}.json`, result);

  const runTable = out.runRows(runs);
  const pairTable = out.pairRows(pairs);
  process.stdout.write(
    `\n${out.renderText(runTable)}\n\n${out.renderText(pairTable, 1)}\n\n` +
      `targets: keel/baseline ops/s >= ${out.TARGETS.opsRatio}, p99 <= ${out.TARGETS.p99Ratio}x, ` +
      `peak RSS <= ${out.TARGETS.rssMb} MB per worker (reported, not asserted)\n` +
      `${out.ledgerCheck(counts)}\n` +
      `idempotency_keys rows: ${keysBefore} before, ${counts.keys} after\n` +
      `machine: ${out.machineLine(m, db.serverVersion, app.fingerprint)}\nresults: ${file}\n`,
  );
  // Experiments and short runs leave bench/LATEST.md to the plain benchmark.
  if (!out.isDefaultRun(opts)) {
    log('non-default settings: bench/LATEST.md left as it is');
    return result;
  }
  const latest = out.updateLatest(
    'compare',
    [
      `## Keel vs baseline (\`npm run bench\`, ${started.toISOString().slice(0, 16)}Z)`,
      '',
      `${CONNECTIONS} keep-alive clients in a closed loop, 50 % reads / 50 % keyed transfers, ` +
        `${opts.warmupS} s warm-up + ${opts.measureS} s measured per run, ${WORKERS} workers and ` +
        `${POOL_MAX} connections per worker each. ops/s counts 2xx answers; latencies cover every ` +
        'answer; peak RSS is VmHWM of each worker; CPU ms/op is worker CPU per answer (+ the PM2 ' +
        "daemon's, which carries Keel's stdout), PG ms/op Postgres's; box busy is the whole " +
        "machine, others the part used by processes outside this benchmark (a shared box's noise).",
      '',
      out.renderMarkdown(runTable),
      '',
      out.renderMarkdown(pairTable, 1),
      '',
      `idempotency_keys rows: ${keysBefore} before, ${counts.keys} after.`,
      '',
      `Machine: ${out.machineLine(m, db.serverVersion, app.fingerprint)}.`,
    ].join('\n'),
  );
  log(`summary: ${latest}`);
  return result;
}

export { runCompare, measure };
