/**
 * The fault run as one self-contained HTML page: inline SVG charts (answers per second by
 * status, latency per bucket), fault windows shaded, and the per-fault table. No scripts, no
 * external resources: it opens from disk in any browser without network.
 */
import type { FaultAnalysis } from './fault-analysis';
import type { CpuPoint } from './sampler';

/** What the page shows: the fault run's result (faults.ts) and its machine line. */
export interface FaultReport {
  startedAt: string;
  config: { connections: number; warmupS: number; bucketMs: number };
  retryBudgetMs: number;
  timeline: FaultAnalysis['timeline'];
  faults: FaultAnalysis['faults'];
  steadyOpsPerS: number;
  recoveryThreshold: number;
  rows: string[][];
  cpu: CpuPoint[];
  machineLine: string;
}

type Bucket = FaultAnalysis['timeline'][number];
type Kind = 'ok' | 's503' | 'otherErr' | 'socket';
type Scale = (v: number) => number;

const COLORS: Record<Kind, string> = {
  ok: '#2f9e5b',
  s503: '#f0a02b',
  otherErr: '#d33c3c',
  socket: '#7b4bd1',
};
const LABELS: Record<Kind, string> = {
  ok: '2xx',
  s503: '503',
  otherErr: 'other non-2xx',
  socket: 'socket error',
};
const W = 1240;
const M = { left: 58, right: 16, top: 26, bottom: 26 };

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };
const esc = (s: unknown) => String(s).replace(/[&<>"]/g, (c) => ENTITIES[c] ?? c);

/** A "nice" upper bound and step for an axis up to `max`. */
function niceScale(max: number, ticks = 5): { top: number; step: number } {
  const raw = Math.max(max, 1) / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) as number;
  return { top: Math.ceil(max / step) * step || step, step };
}

function xAxis(x: Scale, endS: number, y0: number, h: number): string {
  const { step } = niceScale(endS, 12);
  let svg = '';
  for (let t = 0; t <= endS; t += step) {
    svg += `<line x1="${x(t)}" x2="${x(t)}" y1="${y0}" y2="${y0 + h}" class="grid"/>`;
    svg += `<text x="${x(t)}" y="${y0 + h + 15}" class="tick" text-anchor="middle">${t} s</text>`;
  }
  return svg;
}

function faultShading({
  faults,
  x,
  top,
  h,
  warmupS,
  labels,
}: {
  faults: FaultReport['faults'];
  x: Scale;
  top: number;
  h: number;
  warmupS: number;
  labels: boolean;
}): string {
  let svg = `<rect x="${x(0)}" y="${top}" width="${x(warmupS) - x(0)}" height="${h}" class="warm"/>`;
  if (labels)
    svg += `<text x="${x(warmupS / 2)}" y="${top - 8}" class="flabel" text-anchor="middle">warm-up</text>`;
  for (const f of faults) {
    const s = f.start / 1000;
    const e = Math.max(f.end / 1000, s + 0.15);
    svg += `<rect x="${x(s)}" y="${top}" width="${x(e) - x(s)}" height="${h}" class="fault"><title>${esc(f.detail)}</title></rect>`;
    if (f.recoveryMs) {
      const r = e + f.recoveryMs / 1000;
      svg += `<rect x="${x(e)}" y="${top}" width="${x(r) - x(e)}" height="${h}" class="recover"/>`;
    }
    if (labels) svg += `<text x="${x(s)}" y="${top - 8}" class="flabel">${esc(f.name)}</text>`;
  }
  return svg;
}

function rateChart(report: FaultReport): string {
  const { timeline, faults, config } = report;
  const H = 280;
  const h = H - M.top - M.bottom;
  const bucketS = config.bucketMs / 1000;
  const endS = timeline.length * bucketS;
  const x = (t: number) => M.left + (t / endS) * (W - M.left - M.right);
  const perS = 1 / bucketS;
  const maxRate = Math.max(
    ...timeline.map((b: Bucket) => (b.ok + b.s503 + b.otherErr + b.socket) * perS),
    report.steadyOpsPerS,
  );
  const { top, step } = niceScale(maxRate * 1.05);
  const y = (v: number) => M.top + h - (v / top) * h;
  let svg = faultShading({ faults, x, top: M.top, h, warmupS: config.warmupS, labels: true });
  for (let v = 0; v <= top; v += step) {
    svg += `<line x1="${M.left}" x2="${W - M.right}" y1="${y(v)}" y2="${y(v)}" class="grid"/>`;
    svg += `<text x="${M.left - 6}" y="${y(v) + 4}" class="tick" text-anchor="end">${v}</text>`;
  }
  svg += xAxis(x, endS, M.top, h);
  const bw = Math.max(1, x(bucketS) - x(0) - 0.6);
  for (const b of timeline) {
    let base = 0;
    for (const k of ['ok', 's503', 'otherErr', 'socket'] as const) {
      if (!b[k]) continue;
      const v = b[k] * perS;
      svg += `<rect x="${x(b.t).toFixed(1)}" y="${y(base + v).toFixed(1)}" width="${bw.toFixed(1)}" height="${(y(base) - y(base + v)).toFixed(1)}" fill="${COLORS[k]}"><title>${b.t.toFixed(2)} s: ${b[k]} ${LABELS[k]} (${v}/s)</title></rect>`;
      base += v;
    }
  }
  const st = report.steadyOpsPerS;
  svg += `<line x1="${M.left}" x2="${W - M.right}" y1="${y(st)}" y2="${y(st)}" class="steady"/>`;
  svg += `<line x1="${M.left}" x2="${W - M.right}" y1="${y(st * report.recoveryThreshold)}" y2="${y(st * report.recoveryThreshold)}" class="floor"/>`;
  svg += `<text x="${M.left + 4}" y="${M.top + 12}" class="axis">answers/s (${config.bucketMs} ms buckets)</text>`;
  let lx = W - M.right - 560;
  for (const k of Object.keys(COLORS) as Kind[]) {
    svg += `<rect x="${lx}" y="${M.top + 3}" width="11" height="11" fill="${COLORS[k]}"/><text x="${lx + 15}" y="${M.top + 13}" class="legend">${LABELS[k]}</text>`;
    lx += LABELS[k].length * 7 + 30;
  }
  svg += `<text x="${lx}" y="${M.top + 13}" class="legend">— steady · · ${report.recoveryThreshold * 100} %</text>`;
  return `<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="answers per second by status">${svg}</svg>`;
}

function latencyChart(report: FaultReport): string {
  const { timeline, faults, config } = report;
  const H = 140;
  const h = H - 10 - M.bottom;
  const bucketS = config.bucketMs / 1000;
  const endS = timeline.length * bucketS;
  const x = (t: number) => M.left + (t / endS) * (W - M.left - M.right);
  const maxMs = Math.max(10, ...timeline.map((b: Bucket) => b.max ?? 0));
  const decades = Math.ceil(Math.log10(maxMs));
  const y = (ms: number) => 10 + h - (Math.log10(Math.max(ms, 1)) / decades) * h;
  let svg = faultShading({ faults, x, top: 10, h, warmupS: config.warmupS, labels: false });
  for (let d = 0; d <= decades; d++) {
    svg += `<line x1="${M.left}" x2="${W - M.right}" y1="${y(10 ** d)}" y2="${y(10 ** d)}" class="grid"/>`;
    svg += `<text x="${M.left - 6}" y="${y(10 ** d) + 4}" class="tick" text-anchor="end">${10 ** d >= 1000 ? `${10 ** d / 1000} s` : `${10 ** d} ms`}</text>`;
  }
  svg += xAxis(x, endS, 10, h);
  const line = (key: 'p50' | 'p99' | 'max', cls: string) => {
    let d = '';
    let pen = 'M';
    for (const b of timeline) {
      if (b[key] === null) {
        pen = 'M';
        continue;
      }
      d += `${pen}${x(b.t + bucketS / 2).toFixed(1)},${y(b[key]).toFixed(1)}`;
      pen = 'L';
    }
    return `<path d="${d}" class="${cls}"/>`;
  };
  svg += line('max', 'lmax') + line('p99', 'lp99') + line('p50', 'lp50');
  svg += `<text x="${M.left + 4}" y="22" class="axis">latency per bucket (log): <tspan class="kp50">p50</tspan> <tspan class="kp99">p99</tspan> <tspan class="kmax">max</tspan></text>`;
  return `<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="latency">${svg}</svg>`;
}

function cpuChart(report: FaultReport): string {
  const { timeline, faults, config, cpu } = report;
  const H = 100;
  const top = 20;
  const h = H - top - M.bottom;
  const endS = (timeline.length * config.bucketMs) / 1000;
  const x = (t: number) => M.left + (Math.min(t, endS) / endS) * (W - M.left - M.right);
  const y = (share: number) => top + h - share * h;
  let svg = faultShading({ faults, x, top, h, warmupS: config.warmupS, labels: false });
  for (const v of [0, 0.5, 1]) {
    svg += `<line x1="${M.left}" x2="${W - M.right}" y1="${y(v)}" y2="${y(v)}" class="grid"/>`;
    svg += `<text x="${M.left - 6}" y="${y(v) + 4}" class="tick" text-anchor="end">${v * 100} %</text>`;
  }
  svg += xAxis(x, endS, top, h);
  const area = (lower: (p: CpuPoint) => number, upper: (p: CpuPoint) => number, fill: string) => {
    if (cpu.length === 0) return '';
    const top = cpu.map((p) => `${x(p.t).toFixed(1)},${y(upper(p)).toFixed(1)}`);
    const bottom = cpu.map((p) => `${x(p.t).toFixed(1)},${y(lower(p)).toFixed(1)}`).reverse();
    return `<polygon points="${[...top, ...bottom].join(' ')}" fill="${fill}" fill-opacity=".75"/>`;
  };
  svg += area(
    () => 0,
    (p) => p.ours,
    '#5b7db1',
  );
  svg += area(
    (p) => p.ours,
    (p) => Math.min(1, p.ours + p.others),
    '#c0782f',
  );
  svg += `<text x="${M.left + 4}" y="13" class="axis">CPU of the box: <tspan fill="#5b7db1">keel + PM2 + postgres + load</tspan> <tspan fill="#c0782f">other processes</tspan></text>`;
  return `<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="cpu">${svg}</svg>`;
}

function table(rows: string[][]): string {
  const [head = [], ...body] = rows;
  const cls = (cell: string) =>
    cell === 'ok' ? ' class="good"' : /errors|slow/.test(cell) ? ' class="bad"' : '';
  return `<table><thead><tr>${head.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead><tbody>${body
    .map((r) => `<tr>${r.map((c) => `<td${cls(c)}>${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

/** The page, axis and table rules every benchmark report shares (faults, scale-report.ts). */
const PAGE_CSS = `
body{font:13px/1.35 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:12px 20px;color:#222;background:#fff}
h1{font-size:18px;margin:0 0 2px}
.meta{color:#555;font-size:12px;margin-bottom:6px}
.grid{stroke:#e6e6e6;stroke-width:1}
.tick{font-size:11px;fill:#666}
.axis{font-size:12px;fill:#333;font-weight:600}
.legend{font-size:12px;fill:#333}
table{border-collapse:collapse;font-size:12px;margin-top:4px}
th,td{border:1px solid #ddd;padding:2px 7px;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#f4f4f4}
.good{color:#1d7a43;font-weight:600}.bad{color:#b3261e;font-weight:600}`;

function renderFaultReport(report: FaultReport): string {
  const css = `${PAGE_CSS}
.flabel{font-size:12px;fill:#9a1f1f;font-weight:600}
.warm{fill:#000;fill-opacity:.05}
.fault{fill:#d33c3c;fill-opacity:.16}
.recover{fill:#f0c02b;fill-opacity:.18}
.steady{stroke:#333;stroke-width:1;stroke-dasharray:6 4}
.floor{stroke:#333;stroke-width:1;stroke-dasharray:2 3}
path{fill:none}
.lp50{stroke:#2b6cd1;stroke-width:1.5}.lp99{stroke:#c2185b;stroke-width:1.5}.lmax{stroke:#999;stroke-width:1}
.kp50{fill:#2b6cd1}.kp99{fill:#c2185b}.kmax{fill:#999}`;
  const verdict = report.faults.every((f) => f.errorsOk && f.recoveryOk)
    ? 'every fault met the targets'
    : `missed: ${report.faults
        .filter((f) => !(f.errorsOk && f.recoveryOk))
        .map((f) => f.name)
        .join(', ')}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Keel under faults — ${esc(report.startedAt)}</title>
<style>${css}</style></head><body>
<h1>Keel under faults <span style="font-weight:400;color:#666">— ${esc(report.startedAt.slice(0, 19).replace('T', ' '))} UTC · ${esc(verdict)}</span></h1>
<div class="meta">${report.config.connections} keep-alive clients, closed loop, 50 % reads / 50 % keyed transfers · PM2 cluster, 2 workers, database through the fault proxy · steady ${report.steadyOpsPerS.toFixed(0)} 2xx/s · retry budget ${report.retryBudgetMs / 1000} s · red: fault, yellow: until recovered (≥ ${report.recoveryThreshold * 100} % of steady for 2 s) · others CPU: share of the box used outside the benchmark<br>${esc(report.machineLine)}</div>
${rateChart(report)}
${latencyChart(report)}
${cpuChart(report)}
${table(report.rows)}
</body></html>
`;
}

export { renderFaultReport, esc, niceScale, table, PAGE_CSS };
