/**
 * `npm run bench -- --reloads N`: Keel (PM2, 2 workers) under the benchmark's keep-alive load
 * while `pm2 reload web` runs N times in a row. Reports, per reload, how long it took and how
 * many requests failed (a socket error or a 5xx) while it ran; the goal is 0 in every row.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { setUpKeel } from './setup';
import { CONNECTIONS, startLoad } from './load';
import * as out from './output';
import type { View } from './load';
import type { RunDeps } from './types';

// Besides the busy clients, clients that pause up to 2 s between requests: their keep-alive
// sockets are idle at random moments when a drain starts, the race that dropped a request.
const IDLE_CLIENTS = 16;
const THINK_MS = 2000;
// Quiet time between reloads, so each one starts from a steady load and is counted apart.
const GAP_MS = 1000;

/** Failures (socket error = status 0, or >= 500) whose answer came in [from, to) ms of the load. */
function failuresBetween(view: Pick<View, 'n' | 'at' | 'status'>, from: number, to: number) {
  let failed = 0;
  let answered = 0;
  for (let i = 0; i < view.n; i++) {
    const at = view.at[i]!;
    if (at < from || at >= to) continue;
    answered += 1;
    if (view.status[i] === 0 || view.status[i]! >= 500) failed += 1;
  }
  return { answered, failed };
}

function mergeViews(a: View, b: View): Pick<View, 'n' | 'at' | 'status'> {
  const cat = <T extends Float64Array | Uint16Array>(x: T, y: T): T => {
    const out = new (x.constructor as new (n: number) => T)(x.length + y.length);
    out.set(x);
    out.set(y, x.length);
    return out;
  };
  return { n: a.n + b.n, at: cat(a.at, b.at), status: cat(a.status, b.status) };
}

async function runReloads({ opts, cleanup, log }: RunDeps) {
  const started = new Date();
  const { app, db, keel } = await setUpKeel({ opts, cleanup, log });
  log('[keel] starting');
  await keel.start();
  const load = startLoad({
    port: keel.port,
    connections: CONNECTIONS,
    accounts: db.accounts,
    keyPrefix: `reloads-${Date.now()}`,
  });
  const idle = startLoad({
    port: keel.port,
    connections: IDLE_CLIENTS,
    accounts: db.accounts,
    keyPrefix: `reloads-idle-${Date.now()}`,
    thinkMs: THINK_MS,
  });
  const stopLoad = cleanup.add('stop load', () => Promise.all([load.stop(), idle.stop()]));
  const windows: { reload: number; from: number; reloadMs: number }[] = [];
  try {
    await sleep(opts.warmupS * 1000);
    for (let i = 1; i <= opts.reloads; i++) {
      const from = load.elapsed();
      await keel.pm2.run(['reload', 'web'], 120000);
      await keel.refreshPids();
      await sleep(GAP_MS);
      windows.push({ reload: i, from, reloadMs: load.elapsed() - from - GAP_MS });
    }
  } finally {
    await stopLoad();
  }
  const busy = await load.done;
  const calm = await idle.done;
  // One timeline: both loads started within a millisecond of each other.
  const view = mergeViews(busy.recorder.view(), calm.recorder.view());
  const errorCodes = { busy: busy.errorCodes, idle: calm.errorCodes };
  // Each window runs from its reload's start to the next reload's start (the gap included).
  const rows = windows.map((w, i) => {
    const to = windows[i + 1]?.from ?? Infinity;
    const counted = failuresBetween(view, w.from, to);
    log(
      `reload ${w.reload}: ${Math.round(w.reloadMs)} ms, ${counted.answered} answers, ${counted.failed} failed`,
    );
    return { ...w, ...counted };
  });
  const total = failuresBetween(view, 0, Infinity);
  const reloadMs = rows.map((r) => r.reloadMs).sort((a, b) => a - b);
  const summary = {
    reloads: rows.length,
    requests: total.answered,
    failed: total.failed,
    reloadsWithFailures: rows.filter((r) => r.failed > 0).length,
    reloadMsMedian: Math.round(reloadMs[Math.floor(reloadMs.length / 2)] ?? 0),
    reloadMsMax: Math.round(reloadMs[reloadMs.length - 1] ?? 0),
  };
  const counts = await db.counts();
  const file = out.writeResult(`reloads-${out.timestamp(started)}.json`, {
    kind: 'reloads',
    startedAt: started.toISOString(),
    machine: out.machine(),
    distFingerprint: app.fingerprint,
    connections: CONNECTIONS,
    summary,
    errorCodes,
    rows,
    database: counts,
  });
  process.stdout.write(
    `\n${JSON.stringify(summary)}\nsocket errors by code: ${JSON.stringify(errorCodes)}\n` +
      `${out.ledgerCheck(counts)}\n` +
      `results: ${file}\n`,
  );
  if (Object.keys(opts.keelEnv).length > 0) return;
  out.updateLatest(
    'reloads',
    [
      `## Reload soak (\`npm run bench -- --reloads ${rows.length}\`, ${started.toISOString().slice(0, 16)}Z)`,
      '',
      `Keel under PM2 (2 workers), ${CONNECTIONS} busy keep-alive clients and ${IDLE_CLIENTS} that ` +
        `pause up to ${THINK_MS / 1000} s between requests (undici, 50 % reads, 50 % keyed transfers), \`pm2 reload web\` ${rows.length} times in a row, ${GAP_MS / 1000} s apart.`,
      '',
      `| reloads | requests | failed | reloads with a failure | reload time median | max |`,
      `|---:|---:|---:|---:|---:|---:|`,
      `| ${summary.reloads} | ${summary.requests} | ${summary.failed} | ${summary.reloadsWithFailures} | ` +
        `${(summary.reloadMsMedian / 1000).toFixed(1)} s | ${(summary.reloadMsMax / 1000).toFixed(1)} s |`,
      '',
      `Machine: ${out.machineLine(out.machine(), db.serverVersion, app.fingerprint)}.`,
    ].join('\n'),
  );
}

export { runReloads };
