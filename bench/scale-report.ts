/**
 * The scaling run's renderings, pure functions of its cells (bench/scale.ts measures them): the
 * side-by-side table (terminal and Markdown), the "why the curve bends" notes (sentences built
 * only from the measured figures and the core count) and the HTML page with its SVG chart
 * (req/s and p99 against wrk connections, log x; no scripts, no external resources).
 */
import * as out from './output';
import { esc, niceScale, PAGE_CSS, table } from './report';

/** One measured cell: a target at a worker count under wrk's connections. */
export interface ScaleCell {
  target: string;
  workers: number;
  connections: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  /** Connect, read and write errors plus wrk's timeouts. */
  socketErrors: number;
  /** CPU ms per answer: the workers + their supervisor, Postgres, wrk. */
  appMs: number;
  postgresMs: number;
  wrkMs: number;
  /** Share of the whole box busy during the measured window (0..1). */
  machineBusy: number;
  /** False when a worker was replaced inside the window or nothing answered (no CPU per answer). */
  cpuValid: boolean;
  /** Keel: PM2's worker restarts since this worker count started (null: not tracked). */
  restarts: number | null;
}

/** A cell that gave no figures (its target did not start, or wrk failed), and why. */
export interface ScaleMiss {
  target: string;
  workers: number;
  connections: number;
  why: string;
}

export interface ScaleReport {
  startedAt: string;
  nproc: number;
  warmupS: number;
  measureS: number;
  cells: ScaleCell[];
  missed: ScaleMiss[];
  machineLine: string;
}

const TARGETS = ['keel', 'baseline'];
const f = (v: number, d = 1) => v.toFixed(d);
const pct = (v: number) => `${v >= 0 ? '+' : ''}${f(v * 100, 0)} %`;
const sorted = (v: number[]) => [...new Set(v)].sort((a, b) => a - b);

function find(cells: ScaleCell[], target: string, workers: number, connections: number) {
  return cells.find(
    (c) => c.target === target && c.workers === workers && c.connections === connections,
  );
}

/** One row per worker count × connections: Keel and the baseline side by side. */
function scaleRows(cells: ScaleCell[]): out.Rows {
  const header = [
    'workers',
    'connections',
    'req/s keel',
    'req/s base',
    'keel/base',
    'p50 ms keel / base',
    'p99 ms keel / base',
    'non-2xx keel / base',
    'sock err keel / base',
    'app CPU ms/req keel / base',
    'PG CPU ms/req keel / base',
    'box busy keel / base',
    'keel restarts',
  ];
  const rows: string[][] = [];
  for (const w of sorted(cells.map((c) => c.workers))) {
    for (const n of sorted(cells.filter((c) => c.workers === w).map((c) => c.connections))) {
      const k = find(cells, 'keel', w, n);
      const b = find(cells, 'baseline', w, n);
      const both = (v: (c: ScaleCell) => string) => `${k ? v(k) : '-'} / ${b ? v(b) : '-'}`;
      const cpu = (c: ScaleCell) => (c.cpuValid ? f(c.appMs, 3) : 'invalid');
      rows.push([
        String(w),
        String(n),
        k ? f(k.rps, 0) : '-',
        b ? f(b.rps, 0) : '-',
        k && b && b.rps > 0 ? `${f(k.rps / b.rps, 2)}x` : '-',
        both((c) => f(c.p50Ms)),
        both((c) => f(c.p99Ms)),
        both((c) => String(c.non2xx)),
        both((c) => String(c.socketErrors)),
        both(cpu),
        both((c) => (c.cpuValid ? f(c.postgresMs, 3) : 'invalid')),
        both((c) => `${Math.round(c.machineBusy * 100)} %`),
        k?.restarts === null || k?.restarts === undefined ? '-' : String(k.restarts),
      ]);
    }
  }
  return [header, ...rows];
}

/**
 * Why the curve bends, in sentences made of the measured figures: each target's peak; what
 * workers beyond the core count added; what more connections did to req/s and p99; where each
 * answer's CPU went at the peak (the app, Postgres and wrk share the same cores) and the req/s
 * that CPU allows; errors. No figure here comes from anywhere but `cells` and `nproc`.
 */
function bendNotes(cells: ScaleCell[], nproc: number, missed: ScaleMiss[] = []): string[] {
  const notes: string[] = [];
  const workers = sorted(cells.map((c) => c.workers));
  const conns = sorted(cells.map((c) => c.connections));
  for (const target of TARGETS) {
    const mine = cells.filter((c) => c.target === target && c.rps > 0);
    if (mine.length === 0) continue;
    const peak = mine.reduce((a, c) => (c.rps > a.rps ? c : a));
    notes.push(
      `${target} peaked at ${f(peak.rps, 0)} req/s (${peak.workers} worker${peak.workers > 1 ? 's' : ''}, ` +
        `${peak.connections} connections, p99 ${f(peak.p99Ms)} ms, box ${Math.round(peak.machineBusy * 100)} % busy).`,
    );
    const best = (w: number) =>
      Math.max(0, ...mine.filter((c) => c.workers === w).map((c) => c.rps));
    const byWorkers = workers.filter((w) => best(w) > 0);
    if (byWorkers.length > 1) {
      const steps = byWorkers
        .slice(1)
        .map((w, i) => {
          const prev = byWorkers[i] as number;
          return `${prev} → ${w} workers ${pct(best(w) / best(prev) - 1)}`;
        })
        .join(', ');
      const beyond = byWorkers.some((w) => w > nproc)
        ? ` The box has ${nproc} cores: workers beyond ${nproc} cannot add CPU, only share it.`
        : '';
      notes.push(`${target}'s best req/s by worker count: ${steps}.${beyond}`);
    }
    const lo = conns[0] as number;
    const hi = conns[conns.length - 1] as number;
    const first = find(mine, target, peak.workers, lo);
    const last = find(mine, target, peak.workers, hi);
    if (first && last && lo !== hi) {
      const flat = Math.abs(last.rps / first.rps - 1) < 0.1 && last.p99Ms > 2 * first.p99Ms;
      notes.push(
        `At ${peak.workers} worker${peak.workers > 1 ? 's' : ''}, ${lo} → ${hi} connections: req/s ` +
          `${pct(last.rps / first.rps - 1)}, p99 ${f(first.p99Ms)} → ${f(last.p99Ms)} ms, box ` +
          `${Math.round(first.machineBusy * 100)} → ${Math.round(last.machineBusy * 100)} % busy` +
          (flat
            ? ' (throughput within 10 % while p99 more than doubled: the extra connections wait in line).'
            : '.'),
      );
    }
    if (peak.cpuValid) {
      const total = peak.appMs + peak.postgresMs + peak.wrkMs;
      const ceiling = (nproc * 1000) / total;
      notes.push(
        `CPU per answer at that peak: app ${f(peak.appMs, 3)} ms, Postgres ${f(peak.postgresMs, 3)} ms, ` +
          `wrk ${f(peak.wrkMs, 3)} ms (${f(total, 3)} ms on the same ${nproc} cores; Postgres and wrk ` +
          `${f(((peak.postgresMs + peak.wrkMs) / total) * 100, 0)} % of it): ${nproc} cores allow at most ` +
          `${f(ceiling, 0)} req/s at that cost, ${f((peak.rps / ceiling) * 100, 0)} % of which was reached.`,
      );
    }
  }
  const restarted = cells.filter((c) => (c.restarts ?? 0) > 0);
  if (restarted.length) {
    notes.push(
      `PM2 restarted Keel workers (by the end of: ${restarted
        .map((c) => `${c.workers}w/${c.connections}c ${c.restarts}`)
        .join(', ')}): those cells measured fewer workers for part of their window.`,
    );
  }
  if (missed.length) {
    notes.push(
      `Not measured: ${missed.map((c) => `${c.target} ${c.workers}w/${c.connections}c (${c.why})`).join('; ')}.`,
    );
  }
  const bad = cells.filter((c) => c.non2xx > 0 || c.socketErrors > 0);
  notes.push(
    bad.length === 0
      ? 'No cell had a non-2xx answer or a socket error.'
      : `Errors: ${bad
          .map(
            (c) =>
              `${c.target} ${c.workers}w/${c.connections}c ${c.non2xx} non-2xx, ${c.socketErrors} socket errors`,
          )
          .join('; ')}.`,
  );
  return notes;
}

function scaleMarkdown(report: ScaleReport): string {
  return [
    `## Scaling (\`npm run bench -- --scale\`, ${report.startedAt.slice(0, 16)}Z)`,
    '',
    `The read load of \`--reads\` (wrk, \`GET /api/accounts/:id\`), ${report.warmupS} s warm-up + ` +
      `${report.measureS} s measured per cell; each target's workers started once per worker ` +
      'count and measured at every connection count, Keel (PM2) and the baseline alternating. ' +
      'app CPU: the workers + their supervisor, per answer. Chart: bench/results/scale-*.html.',
    '',
    out.renderMarkdown(scaleRows(report.cells)),
    '',
    '### Why the curve bends (from the figures above)',
    '',
    bendNotes(report.cells, report.nproc, report.missed).join(' '),
    '',
    `Machine: ${report.machineLine}.`,
  ].join('\n');
}

const W = 980;
const H = 300;
const M = { left: 62, right: 190, top: 28, bottom: 30 };
const COLORS: Record<string, string> = { keel: '#2b6cd1', baseline: '#c0782f' };
const DASHES = ['2 3', '7 4', '', '12 3 2 3', '4 2'];

interface Series {
  target: string;
  workers: number;
  cells: ScaleCell[];
}

function seriesOf(cells: ScaleCell[]): Series[] {
  const series: Series[] = [];
  for (const target of TARGETS) {
    for (const workers of sorted(cells.map((c) => c.workers))) {
      const mine = cells
        .filter((c) => c.target === target && c.workers === workers)
        .sort((a, b) => a.connections - b.connections);
      if (mine.length) series.push({ target, workers, cells: mine });
    }
  }
  return series;
}

/** One panel: `value` of every series against connections (log2 x), y linear or log10. */
function panel({
  cells,
  value,
  label,
  logY,
}: {
  cells: ScaleCell[];
  value: (c: ScaleCell) => number;
  label: string;
  logY: boolean;
}): string {
  const h = H - M.top - M.bottom;
  const conns = sorted(cells.map((c) => c.connections));
  const lo = Math.log2(conns[0] ?? 1);
  const hi = Math.log2(conns[conns.length - 1] ?? 1);
  const span = Math.max(hi - lo, 1);
  const x = (n: number) =>
    M.left + (hi === lo ? 0.5 : (Math.log2(n) - lo) / span) * (W - M.left - M.right);
  const values = cells.map(value).filter((v) => v > 0);
  let y: (v: number) => number;
  const ticks: [number, string][] = [];
  if (logY) {
    const d0 = Math.floor(Math.log10(Math.min(...values, 10)));
    const d1 = Math.max(d0 + 1, Math.ceil(Math.log10(Math.max(...values, 1))));
    y = (v: number) => M.top + h - ((Math.log10(Math.max(v, 10 ** d0)) - d0) / (d1 - d0)) * h;
    for (let d = d0; d <= d1; d++)
      ticks.push([10 ** d, 10 ** d >= 1000 ? `${10 ** (d - 3)} s` : `${10 ** d} ms`]);
  } else {
    const { top, step } = niceScale(Math.max(...values, 1) * 1.05);
    y = (v: number) => M.top + h - (v / top) * h;
    for (let v = 0; v <= top; v += step) ticks.push([v, String(v)]);
  }
  let svg = '';
  for (const [v, label] of ticks) {
    svg += `<line x1="${M.left}" x2="${W - M.right}" y1="${y(v)}" y2="${y(v)}" class="grid"/>`;
    svg += `<text x="${M.left - 6}" y="${y(v) + 4}" class="tick" text-anchor="end">${label}</text>`;
  }
  for (const n of conns) {
    svg += `<line x1="${x(n)}" x2="${x(n)}" y1="${M.top}" y2="${M.top + h}" class="grid"/>`;
    svg += `<text x="${x(n)}" y="${M.top + h + 15}" class="tick" text-anchor="middle">${n}</text>`;
  }
  svg += `<text x="${(M.left + W - M.right) / 2}" y="${H - 2}" class="tick" text-anchor="middle">wrk connections (log scale)</text>`;
  svg += `<text x="${M.left + 4}" y="${M.top - 10}" class="axis">${esc(label)}</text>`;
  const workers = sorted(cells.map((c) => c.workers));
  let ly = M.top + 6;
  for (const s of seriesOf(cells)) {
    const color = COLORS[s.target] ?? '#555';
    const dash = DASHES[workers.indexOf(s.workers) % DASHES.length] ?? '';
    const style = `stroke="${color}" stroke-width="2" fill="none"${dash ? ` stroke-dasharray="${dash}"` : ''}`;
    // A log axis has no 0 (p99 of no answers); req/s of 0 is a measured point.
    const shown = s.cells.filter((c) => !logY || value(c) > 0);
    const pts = shown.map((c) => `${x(c.connections).toFixed(1)},${y(value(c)).toFixed(1)}`);
    svg += `<polyline points="${pts.join(' ')}" ${style}/>`;
    for (const c of shown) {
      svg += `<circle cx="${x(c.connections).toFixed(1)}" cy="${y(value(c)).toFixed(1)}" r="3.5" fill="${color}"><title>${esc(`${s.target}, ${s.workers} workers, ${c.connections} connections: ${f(c.rps, 0)} req/s, p99 ${f(c.p99Ms)} ms`)}</title></circle>`;
    }
    const lx = W - M.right + 16;
    svg += `<line x1="${lx}" x2="${lx + 34}" y1="${ly}" y2="${ly}" ${style}/>`;
    svg += `<text x="${lx + 40}" y="${ly + 4}" class="legend">${esc(`${s.target}, ${s.workers} worker${s.workers > 1 ? 's' : ''}`)}</text>`;
    ly += 18;
  }
  return `<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(label)}">${svg}</svg>`;
}

function renderScaleReport(report: ScaleReport): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Keel scaling — ${esc(report.startedAt)}</title>
<style>${PAGE_CSS}
p.notes{max-width:${W}px;font-size:12px;margin-top:48px}</style></head><body>
<h1>Keel vs the bare baseline, scaling <span style="font-weight:400;color:#666">— ${esc(report.startedAt.slice(0, 19).replace('T', ' '))} UTC</span></h1>
<div class="meta">wrk, GET /api/accounts/:id of a random seeded account · ${report.warmupS} s warm-up + ${report.measureS} s measured per cell · Keel under PM2 cluster mode, baseline node:cluster + postgres.js, same Postgres<br>${esc(report.machineLine)}</div>
${panel({ cells: report.cells, value: (c) => c.rps, label: 'answers per second', logY: false })}
${panel({ cells: report.cells, value: (c) => c.p99Ms, label: 'p99 latency (log)', logY: true })}
<p class="notes">${esc(bendNotes(report.cells, report.nproc, report.missed).join(' '))}</p>
${table(scaleRows(report.cells))}
</body></html>
`;
}

export { scaleRows, bendNotes, scaleMarkdown, renderScaleReport };
