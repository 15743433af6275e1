/**
 * `npm run bench -- --stalls`: a stall must never become a storm (issue 23). Keel (PM2, 2
 * workers, the real ecosystem) and then the bare baseline, each through its own holding fault
 * proxy (it keeps accepting connections and holds every byte and close both ways, as a
 * platform's TCP proxy does while its upstream stalls, then delivers it all at once), under the
 * benchmark's load, stalled for 2, 6.5 and 15 s one after another. The server's
 * max_connections is Keel's own budget (src/config/budget.ts) plus two: room for Keel and the
 * sampler, so a storm shows up as `too many clients` in the server log.
 *
 * Per target and stall: the most client connections at the server (pg_stat_activity, every
 * 50 ms), connections opened during the stall (the proxy's `accepted`), the first 2xx after the
 * heal, error answers from 1 s after the heal until the next stall, `too many clients` lines.
 */
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import postgres from 'postgres';
import { request } from 'undici';
import { computeBudget } from '../src/config/budget';
import { createBenchDatabase, type BenchDatabase } from './database';
import { createFaultProxy, freePort } from './fixtures';
import { CONNECTIONS, startLoad, type View } from './load';
import * as out from './output';
import { watchLoad } from './progress';
import { median } from './stats';
import { startTargetBoxSampler, type CpuPoint } from './sampler';
import { createSnapshot, type Snapshot } from './snapshot';
import { POOL_MAX, WORKERS, createBaseline, createKeel } from './targets';
import type { RunDeps } from './types';

const STALLS_MS = [2000, 6500, 15000];
// Load before the first stall (on top of the warm-up) and before each later one.
const STEADY_MS = 3000;
// After each heal: the recovery, and a quiet stretch before the next stall.
const GAP_MS = 8000;
const SAMPLE_EVERY_MS = 50;
// Errors count from this long after the heal (issue 23: none from 1 s after it).
const LATE_MS = 1000;
// The connections the bench itself holds at the server meanwhile: the sampler, and one spare.
const OWN_CONNECTIONS = 2;

interface Sample {
  t: number;
  n: number;
}

/** Client backends at the server every 50 ms (load-elapsed ms), its own connection excluded. */
function serverSampler(url: string, clock: () => number) {
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  const samples: Sample[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const [row] = await sql<{ n: number }[]>`
          select count(*)::int as n from pg_stat_activity
          where backend_type = 'client backend' and pid <> pg_backend_pid()`;
        samples.push({ t: clock(), n: row?.n ?? 0 });
      } catch {
        // A sample lost to a full server shows in the server log instead.
      }
      await sleep(SAMPLE_EVERY_MS);
    }
  })();
  return {
    samples,
    async stop() {
      running = false;
      await loop;
      await sql.end({ timeout: 1 });
    },
  };
}

/** Keel's connect attempts by outcome, summed over the workers, and the most connecting at once. */
async function keelMetrics(
  port: number,
): Promise<{ attempts: Record<string, number>; connectingMax: number } | null> {
  try {
    const res = await request(`http://127.0.0.1:${port}/metrics`, {
      headersTimeout: 3000,
      bodyTimeout: 3000,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) return null;
    const attempts: Record<string, number> = {};
    let connectingMax = 0;
    for (const line of text.split('\n')) {
      const a = /^keel_db_connect_attempts_total\{[^}]*outcome="([^"]+)"[^}]*\} (\S+)/.exec(line);
      if (a) attempts[a[1]!] = (attempts[a[1]!] ?? 0) + Number(a[2]);
      const c = /^keel_db_connecting_max(?:\{[^}]*\})? (\S+)/.exec(line);
      if (c) connectingMax = Math.max(connectingMax, Number(c[1]));
    }
    return { attempts, connectingMax };
  } catch {
    return null;
  }
}

/** Keel's non-request log lines with a `time` inside [fromEpoch, toEpoch), tallied by message. */
function logCounts(file: string, fromEpoch: number, toEpoch: number): Record<string, number> {
  const counts: Record<string, number> = {};
  if (!fs.existsSync(file)) return counts;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const e = JSON.parse(line) as { msg?: string; level?: string; time?: string };
      if (e.msg === 'request' || !e.time) continue;
      const t = Date.parse(e.time);
      if (t < fromEpoch || t >= toEpoch) continue;
      const key = `${e.level} ${e.msg}`;
      counts[key] = (counts[key] ?? 0) + 1;
    } catch {
      // A torn line at the end of the file.
    }
  }
  return counts;
}

function tooManyLines(file: string | undefined, from: number, to: number): number {
  if (!file) return 0;
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(Math.max(0, to - from));
    fs.readSync(fd, buf, 0, buf.length, from);
    return buf
      .toString('utf8')
      .split('\n')
      .filter((l) => /too many clients/.test(l)).length;
  } finally {
    fs.closeSync(fd);
  }
}

const logSize = (file: string | undefined) => (file ? fs.statSync(file).size : 0);

/** What one stall recorded while it ran; the figures come after the load stops. */
interface StallWindow {
  stallMs: number;
  /** Load-elapsed ms: the steady stretch before the stall, the stall, the heal, the gap's end. */
  steadyFrom: number;
  start: number;
  heal: number;
  end: number;
  startEpoch: number;
  healEpoch: number;
  endEpoch: number;
  accepted: { before: number; heal: number; end: number };
  serverLog: { from: number; to: number };
  metrics: {
    before: Awaited<ReturnType<typeof keelMetrics>>;
    after: Awaited<ReturnType<typeof keelMetrics>>;
  };
}

const isOk = (s: number) => s >= 200 && s < 300;

function stallFigures(
  w: StallWindow,
  view: View,
  samples: Sample[],
  cpu: CpuPoint[],
  logFile?: string,
) {
  let firstOk: number | null = null;
  let firstOkSent: number | null = null;
  const late: Record<string, number> = {};
  let lateN = 0;
  let steadyOk = 0;
  let inStall = 0;
  for (let i = 0; i < view.n; i++) {
    const at = view.at[i]!;
    const status = view.status[i]!;
    if (at >= w.steadyFrom && at < w.start && isOk(status)) steadyOk += 1;
    if (at >= w.start && at < w.heal && !isOk(status)) inStall += 1;
    if (at >= w.heal && isOk(status)) {
      const after = at - w.heal;
      if (firstOk === null || after < firstOk) firstOk = after;
      if (at - view.ms[i]! >= w.heal && (firstOkSent === null || after < firstOkSent)) {
        firstOkSent = after;
      }
    }
    if (at >= w.heal + LATE_MS && at < w.end && !isOk(status)) {
      const key = status === 0 ? 'socket error' : String(status);
      late[key] = (late[key] ?? 0) + 1;
      lateN += 1;
    }
  }
  const inWindow = samples.filter((s) => s.t >= w.start && s.t < w.end);
  const before = samples.filter((s) => s.t < w.start).at(-1)?.n ?? null;
  const others = cpu.filter((p) => p.t * 1000 >= w.start && p.t * 1000 < w.end);
  const attempts =
    w.metrics.before && w.metrics.after
      ? Object.fromEntries(
          Object.entries(w.metrics.after.attempts).map(([k, v]) => [
            k,
            v - (w.metrics.before?.attempts[k] ?? 0),
          ]),
        )
      : null;
  return {
    stallMs: w.stallMs,
    window: w,
    steadyOpsPerS: (steadyOk * 1000) / (w.start - w.steadyFrom),
    errorsInStall: inStall,
    connsBefore: before,
    maxConns: inWindow.length ? Math.max(...inWindow.map((s) => s.n)) : null,
    samples: inWindow.length,
    openedDuringStall: w.accepted.heal - w.accepted.before,
    openedAfterHeal: w.accepted.end - w.accepted.heal,
    firstOkAfterHealMs: firstOk,
    firstOkSentAfterHealMs: firstOkSent,
    errorsFromHealPlus1s: lateN,
    lateByStatus: late,
    tooManyClients: tooManyLines(logFile, w.serverLog.from, w.serverLog.to),
    othersCpu: others.length ? others.reduce((a, p) => a + p.others, 0) / others.length : null,
    connectAttempts: attempts,
    // keel_db_connecting_max is the most since the worker started, not in this window.
    connectingMaxSinceStart: w.metrics.after?.connectingMax ?? null,
  };
}

type Figures = ReturnType<typeof stallFigures>;

interface Started {
  port: number;
  pids: () => number[];
  daemonPid: () => number | null;
  logFile: (() => string) | null;
  stop: () => Promise<void>;
}

/** One target through its own holding proxy: load, the stalls, then the figures. */
async function stallTarget(
  name: 'keel' | 'baseline',
  start: (databaseUrl: string) => Promise<Started>,
  { db, deps, stamp }: { db: BenchDatabase; deps: RunDeps; stamp: string },
) {
  const { cleanup, log, opts } = deps;
  const proxy = await createFaultProxy({ targetHost: '127.0.0.1', targetPort: db.pg.port });
  const closeProxy = cleanup.add(`close ${name} fault proxy`, () => proxy.close());
  log(`[${name}] starting (database through its own holding fault proxy)`);
  const target = await start(proxy.url(db.url));
  const load = startLoad({
    port: target.port,
    connections: CONNECTIONS,
    accounts: db.accounts,
    keyPrefix: `stalls-${name}-${Date.now()}`,
  });
  const sampler = serverSampler(db.pg.url(), load.elapsed);
  const stopSampler = cleanup.add(`stop ${name} connection sampler`, () => sampler.stop());
  const box = startTargetBoxSampler(target, db.pids, load.elapsed);
  let phase = 'warm-up';
  const stopLoad = watchLoad({
    cleanup,
    label: `${name} stalls`,
    load,
    pids: target.pids,
    phase: () => phase,
  });
  const windows: StallWindow[] = [];
  try {
    await sleep(opts.warmupS * 1000);
    for (const stallMs of STALLS_MS) {
      phase = 'steady';
      const steadyFrom = load.elapsed();
      await sleep(STEADY_MS);
      const metricsBefore = name === 'keel' ? await keelMetrics(target.port) : null;
      const logFrom = logSize(db.pg.logFile);
      const acceptedBefore = proxy.stats().accepted;
      const startEpoch = Date.now();
      const start = load.elapsed();
      phase = `stall ${stallMs / 1000} s`;
      log(`[${name}] stall: holding the path for ${stallMs / 1000} s`);
      proxy.setMode('hold');
      await sleep(stallMs);
      const acceptedHeal = proxy.stats().accepted;
      proxy.setMode('pass');
      const heal = load.elapsed();
      const healEpoch = Date.now();
      phase = 'healed';
      await sleep(GAP_MS);
      windows.push({
        stallMs,
        steadyFrom,
        start,
        heal,
        end: load.elapsed(),
        startEpoch,
        healEpoch,
        endEpoch: Date.now(),
        accepted: { before: acceptedBefore, heal: acceptedHeal, end: proxy.stats().accepted },
        serverLog: { from: logFrom, to: logSize(db.pg.logFile) },
        metrics: {
          before: metricsBefore,
          after: name === 'keel' ? await keelMetrics(target.port) : null,
        },
      });
    }
  } finally {
    await stopLoad();
    await stopSampler();
  }
  const cpu = box.stop();
  const { recorder } = await load.done;
  const view = recorder.view();
  const figures = windows.map((w) => stallFigures(w, view, sampler.samples, cpu, db.pg.logFile));
  const keelLog = target.logFile
    ? windows.map((w) => logCounts(target.logFile!(), w.startEpoch, w.endEpoch))
    : null;
  const STALLED = 'warn database path stalled: a fresh connection got no answer';
  // Kept next to the JSON: PM2's home (and the log in it) goes with `pm2 kill`.
  const logCopy = target.logFile
    ? out.writeResult(`stalls-${stamp}-${name}.log`, fs.readFileSync(target.logFile(), 'utf8'))
    : null;
  await target.stop();
  await closeProxy();
  // The path watch's verdicts: in a stall they are right, anywhere else they are false alarms.
  const verdicts = (from: number, to: number) =>
    logCopy ? (logCounts(logCopy, from, to)[STALLED] ?? 0) : null;
  return {
    name,
    figures: figures.map((f, i) => ({
      ...f,
      verdicts: {
        inStall: verdicts(windows[i]!.startEpoch, windows[i]!.healEpoch),
        afterHeal: verdicts(windows[i]!.healEpoch, windows[i]!.endEpoch),
      },
    })),
    // Before the first stall: warm-up and steady load, no fault at all.
    verdictsBeforeFirstStall: verdicts(load.startedAtEpoch, windows[0]?.startEpoch ?? Date.now()),
    sampleEveryMs: medianGap(sampler.samples),
    keelLog,
    logCopy,
    proxy: proxy.stats(),
  };
}

/** The median time between two samples (the sampler sleeps 50 ms after each answer). */
function medianGap(samples: Sample[]): number | null {
  const gaps = samples.slice(1).map((s, i) => s.t - samples[i]!.t);
  return gaps.length ? median(gaps) : null;
}

const ms = (v: number | null) => (v === null ? 'none' : v.toFixed(0));

function tableRows(
  results: Array<{
    name: string;
    figures: Array<Figures & { verdicts: { inStall: number | null; afterHeal: number | null } }>;
  }>,
): out.Rows {
  const header = [
    'target',
    'stall s',
    'steady 2xx/s',
    'conns before',
    'max conns (50 ms)',
    'opened in stall',
    'opened after heal',
    'first 2xx after heal ms',
    'first 2xx sent after heal ms',
    'errors from heal + 1 s',
    'too many clients',
    'keel "path stalled" in stall / after heal',
    'others CPU',
  ];
  const rows = results.flatMap((r) =>
    r.figures.map((f) => [
      r.name,
      (f.stallMs / 1000).toString(),
      f.steadyOpsPerS.toFixed(0),
      f.connsBefore === null ? '-' : String(f.connsBefore),
      f.maxConns === null ? '-' : String(f.maxConns),
      String(f.openedDuringStall),
      String(f.openedAfterHeal),
      ms(f.firstOkAfterHealMs),
      ms(f.firstOkSentAfterHealMs),
      f.errorsFromHealPlus1s === 0
        ? '0'
        : `${f.errorsFromHealPlus1s} (${Object.entries(f.lateByStatus)
            .map(([k, v]) => `${v}× ${k}`)
            .join(', ')})`,
      String(f.tooManyClients),
      f.verdicts.inStall === null ? '-' : `${f.verdicts.inStall} / ${f.verdicts.afterHeal}`,
      f.othersCpu === null ? '-' : `${Math.round(f.othersCpu * 100)} %`,
    ]),
  );
  return [header, ...rows];
}

async function runStalls(deps: RunDeps) {
  const { cleanup, log, opts } = deps;
  const started = new Date();
  const stamp = out.timestamp(started);
  const app: Snapshot = createSnapshot({ cleanup });
  // Keel's own budget, as its boot-time check computes it for this deployment (1 replica).
  const budget = computeBudget({
    replicas: 1,
    instances: WORKERS,
    poolMax: POOL_MAX,
    deployOverlap: false,
  });
  const maxConnections = budget.peak + OWN_CONNECTIONS;
  const bound = WORKERS * (POOL_MAX + 1);
  const db = await createBenchDatabase({
    app,
    cleanup,
    log,
    settings: { max_connections: maxConnections },
  });
  log(
    `max_connections ${maxConnections} (Keel's budget ${budget.peak} + ${OWN_CONNECTIONS}); ` +
      `Keel's bound: ${WORKERS} workers x (pool ${POOL_MAX} + 1) = ${bound}`,
  );

  const keel = await stallTarget(
    'keel',
    async (databaseUrl) => {
      const k = createKeel({
        app,
        databaseUrl,
        port: await freePort(),
        cleanup,
        env: opts.keelEnv,
      });
      await k.start();
      return {
        port: k.port,
        pids: k.pids,
        daemonPid: () => k.daemonPid(),
        logFile: k.logFile,
        stop: async () => {
          await k.stop();
          await k.kill();
        },
      };
    },
    { db, deps, stamp },
  );
  const baseline = await stallTarget(
    'baseline',
    async (databaseUrl) => {
      const b = createBaseline({
        databaseUrl,
        port: await freePort(),
        cleanup,
        probePath: `/api/accounts/${db.accounts.lo}`,
      });
      await b.start();
      return { port: b.port, pids: b.pids, daemonPid: () => null, logFile: null, stop: b.stop };
    },
    { db, deps, stamp },
  );
  const counts = await db.counts();
  const m = out.machine();
  const results = [keel, baseline];
  const table = tableRows(results);
  const file = out.writeResult(`stalls-${stamp}.json`, {
    kind: 'stalls',
    startedAt: started.toISOString(),
    machine: m,
    postgres: db.serverVersion,
    distFingerprint: app.fingerprint,
    config: {
      connections: CONNECTIONS,
      warmupS: opts.warmupS,
      steadyMs: STEADY_MS,
      gapMs: GAP_MS,
      stallsMs: STALLS_MS,
      workers: WORKERS,
      poolMax: POOL_MAX,
      maxConnections,
      budget,
      bound,
    },
    results,
    database: counts,
  });
  const intro =
    'Not part of `--faults` (it needs its own Postgres, with max_connections just above ' +
    "Keel's budget, and runs the baseline too): run `npm run bench -- --stalls`. " +
    `Keel (PM2, ${WORKERS} workers, pool ${POOL_MAX}) and then the bare baseline (node:http + ` +
    `postgres.js, same pool), each alone under the benchmark's load (${CONNECTIONS} keep-alive ` +
    'clients) through its own holding fault proxy: it keeps accepting connections and holds ' +
    'every byte and close both ways, then delivers them all at once when the path heals (a ' +
    'platform TCP proxy whose upstream stalls). Stalls one after another, each after ' +
    `${STEADY_MS / 1000} s of steady load and followed by ${GAP_MS / 1000} s. Postgres ` +
    `max_connections ${maxConnections}: Keel's budget (src/config/budget.ts: ${budget.parts
      .filter((p) => p.count > 0)
      .map((p) => `${p.count} ${p.name}`)
      .join(' + ')} = ${budget.peak}) plus the sampler and one spare. Keel's bound is ` +
    `${WORKERS} × (${POOL_MAX} + 1) = ${bound} server connections. "max conns": client ` +
    'backends in pg_stat_activity sampled every 50 ms from the stall to the next one; "opened ' +
    'in stall": connections the proxy accepted while holding; first 2xx after heal: the ' +
    'earliest 2xx answer completed after the heal ("sent after": of a request sent after it); ' +
    'errors: non-2xx answers and socket errors from 1 s after the heal until the next stall; ' +
    '"too many clients": lines in the server log; "steady 2xx/s": the 3 s before the stall; ' +
    '"path stalled": Keel\'s path watch declaring the path stalled (log lines, both workers) ' +
    'during the stall (one per worker is right) and from the heal to the next stall (false ' +
    'alarms). "others CPU" is the share of the box used ' +
    'by processes outside the benchmark (the machine is shared with other agents: a slow ' +
    'moment there is theirs as much as ours).';
  const gap = (v: number | null) => (v === null ? '-' : `${v.toFixed(0)} ms`);
  const notes =
    `The sampler took one sample every ${gap(keel.sampleEveryMs)} (keel run) and ` +
    `${gap(baseline.sampleEveryMs)} (baseline run), median: a sample waits for its answer, ` +
    "then 50 ms. Keel's path watch before the first stall (warm-up and steady load, no fault): " +
    `${keel.verdictsBeforeFirstStall} "path stalled" verdicts (false alarms).`;
  process.stdout.write(
    `\n${out.renderText(table, 1)}\n\n${notes}\n${out.ledgerCheck(counts)}\n` +
      `keel connect attempts per stall (metrics): ${JSON.stringify(
        keel.figures.map((f) => ({
          stallMs: f.stallMs,
          attempts: f.connectAttempts,
        })),
      )}\n` +
      `keel log (non-request lines) per stall: ${JSON.stringify(keel.keelLog)}\nresults: ${file}\n`,
  );
  if (!out.isDefaultRun(opts)) {
    log('non-default settings: bench/LATEST.md left as it is');
    return;
  }
  out.updateLatest(
    'stalls',
    [
      `## Stalls through a holding proxy (\`npm run bench -- --stalls\`, ${started.toISOString().slice(0, 16)}Z)`,
      '',
      intro,
      '',
      out.renderMarkdown(table, 1),
      '',
      notes,
      '',
      `Keel's connect attempts per stall (keel_db_connect_attempts_total, from the stall to the ` +
        `next): ${keel.figures
          .map(
            (f) =>
              `${f.stallMs / 1000} s: ${
                f.connectAttempts
                  ? Object.entries(f.connectAttempts)
                      .map(([k, v]) => `${k} ${v}`)
                      .join(', ')
                  : 'not read'
              }`,
          )
          .join('; ')}. ${out.ledgerCheck(counts)}.`,
      '',
      `Machine: ${out.machineLine(m, db.serverVersion, app.fingerprint)}.`,
    ].join('\n'),
  );
}

export { runStalls };
