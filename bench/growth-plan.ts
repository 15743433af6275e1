/**
 * The pure half of `npm run bench -- --growth` (bench/growth.ts runs it): its flags, the steps
 * the database grows through, and the tables rendered from what was measured.
 */
import { CONNECTIONS } from './load';
import { renderMarkdown, type Rows } from './output';
import type { GrowthOpts } from './types';

/** The accounts table grows through these sizes, then the idempotency table through these. */
const ACCOUNT_SIZES = [1e3, 1e5, 1e6];
const KEY_SIZES = [0, 1e5, 1e6];

// Each worker's sweep timer (KEY_SWEEP_INTERVAL_MS): production's is 60 s, which a run of a few
// seconds would never see fire; every 2 s, each sweep finds the keys expired since the last.
const SWEEP_INTERVAL_MS = 2000;
// Of the seeded keys, every GENERATED_EVERY-th is a generated key (`gen:<uuid>`, kept 10 min),
// created 10 min minus 0..EXPIRY_SPAN_S ago: they expire evenly over the next EXPIRY_SPAN_S,
// ~1,500 a second while the table fills to 1e6 (the rate the sweep was sized for). The rest
// are client keys (`client:<uuid>`, kept 48 h) created over the last CLIENT_KEYS_OVER_H hours:
// the rows that make the table big.
const GENERATED_EVERY = 5;
const EXPIRY_SPAN_S = 120;
const CLIENT_KEYS_OVER_H = 47;

/** A short run by default: 2 s warm-up + 6 s measured, one Keel and one baseline per step. */
const GROWTH_DEFAULTS: GrowthOpts = { maxRows: 1e6, warmupS: 2, measureS: 6, pairs: 1 };

/** For run.ts's parseArgs. */
const GROWTH_ARGS = {
  growth: { type: 'boolean', default: false },
  'growth-max': { type: 'string' },
} as const;

/**
 * The growth run's settings from the command line: `--growth-max` (1e3..1e6, `1e5` or
 * `100000`), and `--warmup-s`, `--measure-s`, `--pairs` when given (run.ts has checked their
 * range), else the growth run's own defaults.
 */
function growthOpts(
  argv: string[],
  values: { 'growth-max'?: string | undefined } & Record<string, unknown>,
): GrowthOpts {
  const given = (flag: string) => argv.some((a) => a === `--${flag}` || a.startsWith(`--${flag}=`));
  const int = (flag: 'warmup-s' | 'measure-s' | 'pairs', fallback: number) =>
    given(flag) ? Number(values[flag]) : fallback;
  const raw = values['growth-max'];
  const maxRows = raw === undefined ? GROWTH_DEFAULTS.maxRows : Number(raw);
  if (!Number.isInteger(maxRows) || maxRows < 1e3 || maxRows > 1e6) {
    throw new Error(`--growth-max must be a row count from 1e3 to 1e6, not ${raw}`);
  }
  return {
    maxRows,
    warmupS: int('warmup-s', GROWTH_DEFAULTS.warmupS),
    measureS: int('measure-s', GROWTH_DEFAULTS.measureS),
    pairs: int('pairs', GROWTH_DEFAULTS.pairs),
  };
}

/** What the database holds at one step (before the step's load adds its own keys). */
export interface Step {
  accounts: number;
  keys: number;
}

/**
 * The accounts table grows first (no seeded keys), then, at the largest accounts size, the
 * idempotency table fills: one database, grown step by step, never re-seeded.
 */
function growthSteps(maxRows: number): Step[] {
  const accounts = ACCOUNT_SIZES.filter((n) => n <= maxRows);
  const largest = accounts[accounts.length - 1] ?? ACCOUNT_SIZES[0]!;
  return [
    ...accounts.map((n) => ({ accounts: n, keys: 0 })),
    ...KEY_SIZES.filter((n) => n > 0 && n <= maxRows).map((n) => ({ accounts: largest, keys: n })),
  ];
}

/** A table's size when a run began: exact rows and its bytes with indexes and TOAST. */
export interface TableSize {
  rows: number;
  mb: number;
}

/** What one growth measurement reports (bench/growth.ts); a table row. */
export interface GrowthRun {
  step: number;
  pair: number;
  target: string;
  accounts: TableSize;
  keys: TableSize;
  /** 2xx answers a second. */
  okPerS: number;
  latencyMs: { p50: number | null; p99: number | null };
  readP99Ms: number | null;
  transferP99Ms: number | null;
  /** Answers that were not 2xx, and socket errors. */
  errors: number;
  /** CPU ms per answer: the workers + PM2's daemon (Keel), and Postgres. */
  appMs: number;
  postgresMs: number;
  /** Rows deleted from idempotency_keys during the run (warm-up + measured): the sweep's work. */
  swept: number;
}

const f = (v: number | null, d = 1) => (v === null ? '-' : v.toFixed(d));
const count = (n: number) =>
  n >= 1e6 ? `${f(n / 1e6, 2)}M` : n >= 1e4 ? `${f(n / 1e3, 0)}k` : String(n);

function growthRows(runs: GrowthRun[]): Rows {
  const header = [
    'step',
    'target',
    'accounts',
    'accounts MB',
    'keys',
    'keys MB',
    '2xx/s',
    'p50 ms',
    'p99 ms',
    'read p99',
    'transfer p99',
    'errors',
    'app CPU ms/ans',
    'PG CPU ms/ans',
    'keys swept',
  ];
  const rows = runs.map((r) => [
    r.pair > 1 ? `${r.step}.${r.pair}` : String(r.step),
    r.target,
    count(r.accounts.rows),
    f(r.accounts.mb),
    count(r.keys.rows),
    f(r.keys.mb),
    f(r.okPerS, 0),
    f(r.latencyMs.p50),
    f(r.latencyMs.p99),
    f(r.readP99Ms),
    f(r.transferP99Ms),
    String(r.errors),
    f(r.appMs, 3),
    f(r.postgresMs, 3),
    r.target === 'baseline' ? 'no sweep' : String(r.swept),
  ]);
  return [header, ...rows];
}

/**
 * Per step and pair: Keel against the baseline, and each target's app CPU and p99 against its
 * own first step (how its cost grew with the tables).
 */
function growthRatioRows(runs: GrowthRun[]): Rows {
  const header = [
    'step',
    'accounts / keys',
    'app CPU keel/base',
    'p99 keel/base',
    'keel CPU vs step 1',
    'base CPU vs step 1',
    'keel p99 vs step 1',
    'base p99 vs step 1',
  ];
  const ratio = (a: number | null | undefined, b: number | null | undefined) =>
    a === null || a === undefined || !b ? '-' : `${f(a / b, 2)}x`;
  const find = (step: number, pair: number, target: string) =>
    runs.find((r) => r.step === step && r.pair === pair && r.target === target);
  const rows: string[][] = [];
  for (const keel of runs.filter((r) => r.target === 'keel')) {
    const base = find(keel.step, keel.pair, 'baseline');
    const keel1 = find(1, keel.pair, 'keel');
    const base1 = find(1, keel.pair, 'baseline');
    rows.push([
      keel.pair > 1 ? `${keel.step}.${keel.pair}` : String(keel.step),
      `${count(keel.accounts.rows)} / ${count(keel.keys.rows)}`,
      ratio(keel.appMs, base?.appMs),
      ratio(keel.latencyMs.p99, base?.latencyMs.p99),
      ratio(keel.appMs, keel1?.appMs),
      ratio(base?.appMs, base1?.appMs),
      ratio(keel.latencyMs.p99, keel1?.latencyMs.p99),
      ratio(base?.latencyMs.p99, base1?.latencyMs.p99),
    ]);
  }
  return [header, ...rows];
}

/** bench/LATEST.md's growth section: the run's settings and its two tables, as measured. */
function growthSection(r: {
  startedAt: Date;
  steps: Step[];
  opts: GrowthOpts;
  table: Rows;
  ratios: Rows;
  ledger: string;
  machine: string;
}): string {
  const through = (k: keyof Step) => [...new Set(r.steps.map((s) => s[k]))].join(' -> ');
  return [
    `## How cost grows with the tables (\`npm run bench -- --growth\`, ` +
      `${r.startedAt.toISOString().slice(0, 16)}Z)`,
    '',
    `One database grown step by step: accounts ${through('accounts')} rows, then idempotency ` +
      `keys ${through('keys')} seeded (1 in ${GENERATED_EVERY} a generated key expiring within ` +
      `the next ${EXPIRY_SPAN_S} s, the rest client keys of the last ${CLIENT_KEYS_OVER_H} h). ` +
      `At each step Keel (its sweep every ${SWEEP_INTERVAL_MS / 1000} s in each worker) and the ` +
      `baseline (writes keys, never sweeps) take the mixed load: ${CONNECTIONS} clients, 50 % ` +
      `reads / 50 % keyed transfers over all accounts, ${r.opts.warmupS} s warm-up + ` +
      `${r.opts.measureS} s measured. Rows and MB (with indexes) when the run began; the ` +
      "load's own keys count too. app CPU = the workers + PM2's daemon, per answer; PG = the " +
      'postmaster and its children; keys swept = rows deleted from idempotency_keys during the ' +
      'run.',
    '',
    renderMarkdown(r.table),
    '',
    renderMarkdown(r.ratios, 2),
    '',
    `${r.ledger}.`,
    '',
    `Machine: ${r.machine}.`,
  ].join('\n');
}

/** bench/LATEST.md's growth section is written by a run on the defaults only. */
function isDefaultGrowth(g: GrowthOpts, keelEnv: Record<string, string>): boolean {
  return (
    g.maxRows === GROWTH_DEFAULTS.maxRows &&
    g.warmupS === GROWTH_DEFAULTS.warmupS &&
    g.measureS === GROWTH_DEFAULTS.measureS &&
    g.pairs === GROWTH_DEFAULTS.pairs &&
    Object.keys(keelEnv).length === 0
  );
}

export {
  GROWTH_ARGS,
  GROWTH_DEFAULTS,
  SWEEP_INTERVAL_MS,
  GENERATED_EVERY,
  EXPIRY_SPAN_S,
  CLIENT_KEYS_OVER_H,
  growthSection,
  growthOpts,
  growthSteps,
  growthRows,
  growthRatioRows,
  isDefaultGrowth,
};
