/** Machine facts, the results table (stdout and Markdown), results files and bench/LATEST.md. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BENCH, ROOT } from './fixtures';
import type { MemoryPeak } from './sampler';
import type { Summary } from './stats';
import type { Opts } from './types';

const RESULTS = path.join(BENCH, 'results');
const LATEST = path.join(BENCH, 'LATEST.md');

// The targets: reported next to the figures, never asserted.
const TARGETS = { opsRatio: 0.9, p99Ratio: 1.2, rssMb: 80 };

export type Machine = ReturnType<typeof machine>;

function machine() {
  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  const git = (args: string[]): string | null => {
    try {
      return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
    } catch {
      return null;
    }
  };
  return {
    nproc: os.availableParallelism(),
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown',
    ramGb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: os.release(),
    commit: git(['rev-parse', '--short', 'HEAD']),
    srcDirty: (git(['status', '--porcelain', '--', 'src']) ?? '') !== '',
  };
}

function machineLine(m: Machine, pgVersion: string, fingerprint?: string): string {
  return (
    `${m.nproc} vCPU ${m.cpu}, ${m.ramGb} GB RAM, Node ${m.node}, PostgreSQL ${pgVersion}, ` +
    `Linux ${m.kernel}; commit ${m.commit}${m.srcDirty ? ' + uncommitted src/ changes' : ''}` +
    (fingerprint ? `, dist ${fingerprint}` : '')
  );
}

const f1 = (v: number | null | undefined) => (v === null || v === undefined ? '-' : v.toFixed(1));
const mb = (kb: number) => kb / 1024;

/** What one compare measurement reports (see compare.ts); a table row. */
export interface RunRow {
  pair: number;
  target: string;
  summary: Summary;
  memory: MemoryPeak[];
  cpu: {
    msPerOp: number;
    daemonMsPerOp: number | null;
    postgresMsPerOp: number;
    machineBusy: number;
    othersShare: number;
  };
}

export interface PairRow {
  pair: number;
  target: string;
  opsRatio: number;
  p99Ratio: number;
  keelPeakRssMb: number;
}

export type Rows = string[][];

/** Rows (arrays of cells) for the runs table; shared by the terminal and Markdown renderings. */
function runRows(runs: RunRow[]): Rows {
  const header = [
    'run',
    'target',
    'ops/s',
    'p50 ms',
    'p90 ms',
    'p99 ms',
    'max ms',
    'non-2xx',
    'sock err',
    'peak RSS/worker MB',
    'CPU ms/op',
    'PG ms/op',
    'box busy',
    'others',
  ];
  const rows = runs.map((r) => [
    String(r.pair),
    r.target,
    r.summary.opsPerS.toFixed(0),
    f1(r.summary.latencyMs.p50),
    f1(r.summary.latencyMs.p90),
    f1(r.summary.latencyMs.p99),
    f1(r.summary.latencyMs.max),
    String(r.summary.non2xx),
    String(r.summary.socketErrors),
    r.memory.map((w) => mb(w.hwmKb).toFixed(0)).join(' / '),
    r.cpu.msPerOp.toFixed(2) + (r.cpu.daemonMsPerOp ? ` +${r.cpu.daemonMsPerOp.toFixed(2)}` : ''),
    r.cpu.postgresMsPerOp.toFixed(2),
    `${Math.round(r.cpu.machineBusy * 100)} %`,
    `${Math.round(r.cpu.othersShare * 100)} %`,
  ]);
  return [header, ...rows];
}

function pairRows(pairs: PairRow[]): Rows {
  const variants = new Set(pairs.map((p) => p.target)).size > 1;
  const header = [
    variants ? 'pair / target' : 'pair',
    'ops/s keel/base',
    'p99 keel/base',
    'keel peak RSS MB',
    'targets',
  ];
  const rows = pairs.map((p) => {
    const misses = [];
    if (p.opsRatio < TARGETS.opsRatio) misses.push('throughput');
    if (p.p99Ratio > TARGETS.p99Ratio) misses.push('p99');
    if (p.keelPeakRssMb > TARGETS.rssMb) misses.push('RSS');
    return [
      variants ? `${p.pair} ${p.target}` : String(p.pair),
      `${p.opsRatio.toFixed(2)}x`,
      `${p.p99Ratio.toFixed(2)}x`,
      p.keelPeakRssMb.toFixed(0),
      misses.length ? `missed: ${misses.join(', ')}` : 'all met',
    ];
  });
  return [header, ...rows];
}

/** Plain-text table; the first `left` columns are left-aligned, the rest right-aligned. */
function renderText(rows: Rows, left = 2): string {
  const head = rows[0] ?? [];
  const widths = head.map((_, c) => Math.max(...rows.map((r) => r[c]?.length ?? 0)));
  const line = (r: string[]) =>
    r
      .map((cell, c) => (c < left ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0)))
      .join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join(
    '\n',
  );
}

function renderMarkdown(rows: Rows, left = 2): string {
  const head = rows[0] ?? [];
  const line = (r: string[]) => `| ${r.join(' | ')} |`;
  const align = head.map((_, c) => (c < left ? '---' : '---:'));
  return [line(head), line(align), ...rows.slice(1).map(line)].join('\n');
}

function timestamp(d = new Date()) {
  return d.toISOString().replace(/[:.]/g, '-').replace('T', '_').slice(0, 19);
}

function writeResult(name: string, data: unknown): string {
  fs.mkdirSync(RESULTS, { recursive: true });
  const file = path.join(RESULTS, name);
  fs.writeFileSync(file, typeof data === 'string' ? data : JSON.stringify(data, null, 2) + '\n');
  return file;
}

/** Replaces the section between this mode's markers in bench/LATEST.md (the other one stays). */
function updateLatest(mode: string, markdown: string): string {
  const start = `<!-- bench:${mode}:start -->`;
  const end = `<!-- bench:${mode}:end -->`;
  let text = fs.existsSync(LATEST)
    ? fs.readFileSync(LATEST, 'utf8')
    : '# Latest benchmark results\n\nWritten by `npm run bench` and `npm run bench -- --faults`.\n';
  const block = `${start}\n${markdown.trim()}\n${end}`;
  const re = new RegExp(`${start}[\\s\\S]*?${end}`);
  text = re.test(text) ? text.replace(re, block) : `${text.trimEnd()}\n\n${block}\n`;
  fs.writeFileSync(LATEST, text);
  return LATEST;
}

/** The line every mode ends with: transfers moved money, never made or lost any. */
function ledgerCheck(counts: { total: string; opening: string }): string {
  return `ledger check: sum(balance) ${counts.total === counts.opening ? '=' : '!='} sum(opening_balance)`;
}

/** The settings of a plain `npm run bench` (what bench/LATEST.md and docs/benchmarks.md show). */
const DEFAULTS = { warmupS: 5, measureS: 20, pairs: 2 };

function isDefaultRun(opts: Opts): boolean {
  return (
    opts.warmupS === DEFAULTS.warmupS &&
    opts.measureS === DEFAULTS.measureS &&
    opts.pairs === DEFAULTS.pairs &&
    Object.keys(opts.keelEnv).length === 0 &&
    Object.keys(opts.variantEnv).length === 0
  );
}

export {
  ledgerCheck,
  TARGETS,
  DEFAULTS,
  isDefaultRun,
  machine,
  machineLine,
  runRows,
  pairRows,
  renderText,
  renderMarkdown,
  timestamp,
  writeResult,
  updateLatest,
};
