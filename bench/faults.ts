/**
 * `npm run bench -- --faults`: Keel alone (PM2, 2 workers, DATABASE_URL through the fault
 * proxy) under the benchmark's load while faults come one after another, each followed by a
 * quiet gap. Writes a JSON file and a self-contained HTML timeline, then screenshots it.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { createFaultProxy, freePort } from './fixtures';
import { createBenchDatabase } from './database';
import { createSnapshot } from './snapshot';
import { analyseFaults } from './fault-analysis';
import { CONNECTIONS, startLoad } from './load';
import * as out from './output';
import { watchLoad } from './progress';
import { startProbes, stallFigures } from './probes';
import { renderFaultReport } from './report';
import { startSampler, startTargetBoxSampler } from './sampler';
import { createKeel } from './targets';
import { BENCH } from './fixtures';
import type { Fault } from './fault-analysis';
import type { Probe } from './probes';
import type { Log, RunDeps } from './types';

const execFileAsync = promisify(execFile);

// Keel's DB_RETRY_BUDGET_MS default: an outage shorter than this should cost no error answers.
const RETRY_BUDGET_MS = 5000;
// Keel's default REQUEST_TIMEOUT_MS (the benchmark does not change it).
const REQUEST_TIMEOUT_MS = 10000;
// Quiet time after each fault: long enough to see the recovery and a steady stretch again.
const GAP_MS = 8000;
const STEADY_MS = 5000;
const BUCKET_MS = 250;
// The steady level is taken outside faults and this long after each one ends.
const CALM_AFTER_MS = 4000;

// Non-request log lines kept verbatim in the JSON (a reload or an outage writes a few hundred).
const MAX_LOG_LINES = 2000;

/** Keel's log lines other than the per-request access line: tallied by message, and kept. */
function logSummary(file: string) {
  const counts: Record<string, number> = {};
  const lines: unknown[] = [];
  if (!fs.existsSync(file)) return { counts, lines };
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { msg?: string; level?: string };
      if (entry.msg === 'request') continue;
      const key = `${entry.level} ${entry.msg}`;
      counts[key] = (counts[key] ?? 0) + 1;
      if (lines.length < MAX_LOG_LINES) lines.push(entry);
    } catch {
      // A torn line at the end of the file.
    }
  }
  return { counts, lines };
}

async function screenshot(html: string, png: string, log: Log): Promise<string | null> {
  const script = path.join(BENCH, 'screenshot.sh');
  try {
    await execFileAsync('bash', [script, html, png], { timeout: 90000 });
    log(`screenshot: ${png}`);
    return png;
  } catch (err) {
    const failure = err as { stderr?: string; message?: string };
    log(
      `screenshot skipped: ${(failure.stderr || failure.message || '').toString().trim().split('\n')[0]}`,
    );
    return null;
  }
}

async function runFaults({ opts, cleanup, log }: RunDeps) {
  const started = new Date();
  const app = createSnapshot({ cleanup });
  const db = await createBenchDatabase({ app, cleanup, log });
  const proxy = await createFaultProxy({ targetHost: '127.0.0.1', targetPort: db.pg.port });
  cleanup.add('close fault proxy', () => proxy.close());
  const keel = createKeel({
    app,
    databaseUrl: proxy.url(db.url),
    port: await freePort(),
    cleanup,
    env: opts.keelEnv,
  });
  log('[keel] starting (database through the fault proxy)');
  await keel.start();

  const sampler = startSampler(() => keel.pids());
  const load = startLoad({
    port: keel.port,
    connections: CONNECTIONS,
    accounts: db.accounts,
    keyPrefix: `faults-${Date.now()}`,
  });
  const box = startTargetBoxSampler(keel, db.pids, load.elapsed);
  let phase = 'warm-up';
  const stopLoad = watchLoad({
    cleanup,
    label: 'keel faults',
    load,
    pids: keel.pids,
    phase: () => phase,
  });
  const faults: Fault[] = [];
  // Set inside the blackhole fault's closure (so not narrowed to null here).
  let stall = null as { start: number; end: number; probes: Probe[] } | null;
  const fault = async (name: string, outageMs: number | 'measured', act: () => Promise<string>) => {
    phase = name.split(' ')[0]!;
    const start = load.elapsed();
    log(`fault: ${name}`);
    const detail = await act();
    const end = load.elapsed();
    faults.push({
      name,
      start,
      outageMs: outageMs === 'measured' ? end - start : outageMs,
      detail,
      end,
    });
    phase = 'recovery';
    await sleep(GAP_MS);
  };

  try {
    await sleep(opts.warmupS * 1000);
    phase = 'steady';
    await sleep(STEADY_MS);
    await fault('backend terminations', 0, async () => {
      let n = 0;
      for (let i = 0; i < 3; i++) {
        if (i > 0) await sleep(1000);
        n += await db.terminate('keel:');
      }
      return `pg_terminate_backend on every keel backend, 3 sweeps 1 s apart (${n} backends)`;
    });
    await fault('database restart', 'measured', async () => {
      await db.pg.stop('fast');
      await sleep(3000);
      await db.pg.start();
      return 'pg_ctl stop -m fast, 3 s down, pg_ctl start';
    });
    await fault('blackhole', 5000, async () => {
      const probes = startProbes({ port: keel.port, elapsed: load.elapsed });
      await sleep(500);
      const start = load.elapsed();
      proxy.setMode('blackhole');
      await sleep(5000);
      proxy.setMode('pass');
      const end = load.elapsed();
      await sleep(1000);
      stall = { start, end, probes: await probes.stop() };
      return 'fault proxy drops every byte both ways for 5 s (also on new connections)';
    });
    await fault('pm2 reload', 0, async () => {
      const before = keel.pids().join(', ');
      await keel.pm2.run(['reload', 'web'], 120000);
      const after = (await keel.refreshPids()).join(', ');
      return `pm2 reload web (workers ${before} → ${after})`;
    });
  } finally {
    await stopLoad();
  }
  const memory = sampler.stop();
  const blackhole = stall
    ? stallFigures({
        probes: stall.probes,
        view: (await load.done).recorder.view(),
        start: stall.start,
        end: stall.end,
        deadlineMs: REQUEST_TIMEOUT_MS,
      })
    : null;
  const cpu = box.stop();
  const { recorder, errorCodes, elapsedMs } = await load.done;
  const logs = logSummary(keel.logFile());
  const counts = await db.counts();

  const analysis = analyseFaults(recorder.view(), faults, {
    bucketMs: BUCKET_MS,
    endMs: elapsedMs,
    warmupMs: opts.warmupS * 1000,
    cpu,
    calmAfterMs: CALM_AFTER_MS,
    retryBudgetMs: RETRY_BUDGET_MS,
  });
  const m = out.machine();
  const result = {
    kind: 'faults',
    startedAt: started.toISOString(),
    machine: m,
    postgres: db.serverVersion,
    distFingerprint: app.fingerprint,
    config: { connections: CONNECTIONS, warmupS: opts.warmupS, bucketMs: BUCKET_MS, gapMs: GAP_MS },
    retryBudgetMs: RETRY_BUDGET_MS,
    faults: analysis.faults,
    blackhole,
    steadyOpsPerS: analysis.steadyOpsPerS,
    recoveryThreshold: analysis.recoveryThreshold,
    rows: analysis.rows,
    totals: analysis.totals,
    errorCodes,
    memory,
    cpu,
    keelLog: logs,
    database: counts,
    timeline: analysis.timeline,
  };
  const ts = out.timestamp(started);
  const file = out.writeResult(`faults-${ts}.json`, result);
  const html = out.writeResult(
    `faults-${ts}.html`,
    renderFaultReport({
      ...result,
      machineLine: out.machineLine(m, db.serverVersion, app.fingerprint),
    }),
  );
  const table = analysis.rows;
  process.stdout.write(
    `\n${out.renderText(table, 1)}\n\nsteady level ${analysis.steadyOpsPerS.toFixed(0)} 2xx/s; ` +
      `whole run: ${JSON.stringify(analysis.totals.byStatus)}, socket errors ${analysis.totals.socketErrors}\n` +
      `${out.ledgerCheck(counts)}\n` +
      `blackhole: ${JSON.stringify(blackhole)}\n` +
      `keel log (non-request lines): ${JSON.stringify(logs.counts)}\nresults: ${file}\nreport: ${html}\n`,
  );
  // Only a run with the default settings replaces the committed screenshot and summary.
  const official = out.isDefaultRun(opts);
  const png = await screenshot(
    html,
    official ? path.join(BENCH, 'faults-report.png') : html.replace(/\.html$/, '.png'),
    log,
  );
  if (!official) {
    log('non-default settings: bench/LATEST.md and bench/faults-report.png left as they are');
    return;
  }
  out.updateLatest(
    'faults',
    [
      `## Keel under faults (\`npm run bench -- --faults\`, ${started.toISOString().slice(0, 16)}Z)`,
      '',
      `Same load, Keel alone, database through the fault proxy. Steady level ` +
        `${analysis.steadyOpsPerS.toFixed(0)} 2xx/s. Recovery: time from the end of the fault ` +
        `until every 1 s window of the next 2 s is back at ≥ ${analysis.recoveryThreshold * 100} % ` +
        'of the steady level. 503s are allowed only for outages at least as long as the retry ' +
        `budget (${RETRY_BUDGET_MS / 1000} s). "others CPU" is the share of the box used by ` +
        'processes outside the benchmark meanwhile: when it is high, a slow recovery may be the ' +
        "neighbours' doing (see the CPU panel).",
      '',
      out.renderMarkdown(table, 1),
      '',
      ...(blackhole
        ? [
            `Blackhole, readiness and recovery (probes every 100 ms): first \`/readyz\` 503 ` +
              `${blackhole.readyz503AfterMs} ms after the stall began; \`/readyz\` 200 answers ` +
              `from 1 s into the stall on: ${blackhole.readyz200DuringStall}; \`/healthz\` ` +
              `${blackhole.healthzAll200 ? 'always 200' : 'NOT always 200'}; first 2xx ` +
              `${blackhole.first2xxAfterHealMs} ms after the path healed; answers slower than ` +
              `the ${REQUEST_TIMEOUT_MS / 1000} s deadline: ${blackhole.answersPastDeadline}.`,
            '',
          ]
        : []),
      png ? '![fault timeline](faults-report.png)' : '',
      '',
      `Machine: ${out.machineLine(m, db.serverVersion, app.fingerprint)}.`,
    ].join('\n'),
  );
}

export { runFaults };
