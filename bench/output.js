'use strict';
/** Machine facts, the results table (stdout and Markdown), results files and bench/LATEST.md. */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ROOT } = require('./fixtures');

const RESULTS = path.join(__dirname, 'results');
const LATEST = path.join(__dirname, 'LATEST.md');

// The targets: reported next to the figures, never asserted.
const TARGETS = { opsRatio: 0.9, p99Ratio: 1.2, rssMb: 80 };

function machine() {
  const cpuinfo = fs.existsSync('/proc/cpuinfo') ? fs.readFileSync('/proc/cpuinfo', 'utf8') : '';
  const git = (args) => {
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

function machineLine(m, pgVersion, fingerprint) {
  return (
    `${m.nproc} vCPU ${m.cpu}, ${m.ramGb} GB RAM, Node ${m.node}, PostgreSQL ${pgVersion}, ` +
    `Linux ${m.kernel}; commit ${m.commit}${m.srcDirty ? ' + uncommitted src/ changes' : ''}` +
    (fingerprint ? `, dist ${fingerprint}` : '')
  );
}

const f1 = (v) => (v === null || v === undefined ? '-' : v.toFixed(1));
const mb = (kb) => kb / 1024;

/** Rows (arrays of cells) for the runs table; shared by the terminal and Markdown renderings. */
function runRows(runs) {
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

function pairRows(pairs) {
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
function renderText(rows, left = 2) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r) =>
    r.map((cell, c) => (c < left ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ');
  return [
    line(rows[0]),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.slice(1).map(line),
  ].join('\n');
}

function renderMarkdown(rows, left = 2) {
  const line = (r) => `| ${r.join(' | ')} |`;
  const align = rows[0].map((_, c) => (c < left ? '---' : '---:'));
  return [line(rows[0]), line(align), ...rows.slice(1).map(line)].join('\n');
}

function timestamp(d = new Date()) {
  return d.toISOString().replace(/[:.]/g, '-').replace('T', '_').slice(0, 19);
}

function writeResult(name, data) {
  fs.mkdirSync(RESULTS, { recursive: true });
  const file = path.join(RESULTS, name);
  fs.writeFileSync(file, typeof data === 'string' ? data : JSON.stringify(data, null, 2) + '\n');
  return file;
}

/** Replaces the section between this mode's markers in bench/LATEST.md (the other one stays). */
function updateLatest(mode, markdown) {
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

/** The settings of a plain `npm run bench` (what bench/LATEST.md and the README show). */
const DEFAULTS = { warmupS: 5, measureS: 20, pairs: 2 };

function isDefaultRun(opts) {
  return (
    opts.warmupS === DEFAULTS.warmupS &&
    opts.measureS === DEFAULTS.measureS &&
    opts.pairs === DEFAULTS.pairs &&
    Object.keys(opts.keelEnv).length === 0 &&
    Object.keys(opts.variantEnv).length === 0
  );
}

module.exports = {
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
