'use strict';
/**
 * `npm run bench -- --faults`: Keel alone (PM2, 2 workers, DATABASE_URL through the fault
 * proxy) under the benchmark's load while faults come one after another, each followed by a
 * quiet gap. Writes a JSON file and a self-contained HTML timeline, then screenshots it.
 */
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const { promisify } = require('node:util');
const { createFaultProxy, freePort } = require('./fixtures');
const { createBenchDatabase } = require('./database');
const { createSnapshot } = require('./snapshot');
const { analyseFaults } = require('./fault-analysis');
const { CONNECTIONS, startLoad } = require('./load');
const out = require('./output');
const { startProgress } = require('./progress');
const { startProbes, stallFigures } = require('./probes');
const { renderFaultReport } = require('./report');
const { childrenOf, startBoxSampler, startSampler } = require('./sampler');
const { createKeel } = require('./targets');

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
function logSummary(file) {
  const counts = {};
  const lines = [];
  if (!fs.existsSync(file)) return { counts, lines };
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line);
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

async function screenshot(html, png, log) {
  const script = path.join(__dirname, 'screenshot.sh');
  try {
    await execFileAsync('bash', [script, html, png], { timeout: 90000 });
    log(`screenshot: ${png}`);
    return png;
  } catch (err) {
    log(
      `screenshot skipped: ${(err.stderr || err.message || '').toString().trim().split('\n')[0]}`,
    );
    return null;
  }
}

async function runFaults({ opts, cleanup, log }) {
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
  const daemon = keel.daemonPid();
  // Workers are the daemon's children (also the new ones mid-reload); tools are ours (pm2 CLI).
  const box = startBoxSampler(
    () => ({
      workers: daemon ? childrenOf(daemon) : keel.pids(),
      daemon: daemon ? [daemon] : [],
      postgres: db.pids(),
      tools: childrenOf(process.pid),
    }),
    load.elapsed,
  );
  let phase = 'warm-up';
  const progress = startProgress({
    label: 'keel faults',
    load,
    pids: keel.pids,
    phase: () => phase,
  });
  // First to go on Ctrl-C: a server under load drains slowly.
  const stopLoad = cleanup.add('stop load', async () => {
    progress.stop();
    await load.stop();
  });
  const faults = [];
  let stall = null;
  const fault = async (name, outageMs, act) => {
    phase = name.split(' ')[0];
    const f = { name, start: load.elapsed(), outageMs };
    log(`fault: ${name}`);
    f.detail = await act();
    f.end = load.elapsed();
    if (outageMs === 'measured') f.outageMs = f.end - f.start;
    faults.push(f);
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
      `ledger check: sum(balance) ${counts.total === counts.opening ? '=' : '!='} sum(opening_balance)\n` +
      `blackhole: ${JSON.stringify(blackhole)}\n` +
      `keel log (non-request lines): ${JSON.stringify(logs.counts)}\nresults: ${file}\nreport: ${html}\n`,
  );
  // Only a run with the default settings replaces the committed screenshot and summary.
  const official = out.isDefaultRun(opts);
  const png = await screenshot(
    html,
    official ? path.join(__dirname, 'faults-report.png') : html.replace(/\.html$/, '.png'),
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

module.exports = { runFaults };
