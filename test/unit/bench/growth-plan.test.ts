import {
  growthOpts,
  growthRatioRows,
  growthRows,
  growthSection,
  growthSteps,
  isDefaultGrowth,
  type GrowthRun,
} from '../../../bench/growth-plan';

const values = (v: Record<string, string>) => ({
  'warmup-s': '5',
  'measure-s': '20',
  pairs: '2',
  ...v,
});

describe('growthOpts', () => {
  test('a short run by default: 2 s + 6 s, one pair, up to 1e6 rows', () => {
    expect(growthOpts(['--growth'], values({}))).toEqual({
      maxRows: 1e6,
      warmupS: 2,
      measureS: 6,
      pairs: 1,
    });
    expect(isDefaultGrowth(growthOpts(['--growth'], values({})), {})).toBe(true);
  });

  test('--warmup-s, --measure-s and --pairs given override, in either spelling', () => {
    const argv = ['--growth', '--warmup-s', '1', '--measure-s=2', '--pairs', '3'];
    const opts = growthOpts(argv, values({ 'warmup-s': '1', 'measure-s': '2', pairs: '3' }));
    expect(opts).toEqual({ maxRows: 1e6, warmupS: 1, measureS: 2, pairs: 3 });
    expect(isDefaultGrowth(opts, {})).toBe(false);
  });

  test('--growth-max takes 1e5 or 100000, and refuses sizes outside 1e3..1e6', () => {
    expect(growthOpts([], values({ 'growth-max': '1e5' })).maxRows).toBe(100000);
    expect(growthOpts([], values({ 'growth-max': '100000' })).maxRows).toBe(100000);
    for (const bad of ['1e7', '999', 'lots', '12345.5']) {
      expect(() => growthOpts([], values({ 'growth-max': bad }))).toThrow(/--growth-max/);
    }
  });

  test('extra Keel environment is not the default run', () => {
    expect(isDefaultGrowth(growthOpts([], values({})), { LOG_LEVEL: 'warn' })).toBe(false);
  });
});

describe('growthSteps', () => {
  test('accounts grow first, then the keys fill at the largest accounts size', () => {
    expect(growthSteps(1e6)).toEqual([
      { accounts: 1e3, keys: 0 },
      { accounts: 1e5, keys: 0 },
      { accounts: 1e6, keys: 0 },
      { accounts: 1e6, keys: 1e5 },
      { accounts: 1e6, keys: 1e6 },
    ]);
  });

  test('--growth-max stops both series at that size', () => {
    expect(growthSteps(1e5)).toEqual([
      { accounts: 1e3, keys: 0 },
      { accounts: 1e5, keys: 0 },
      { accounts: 1e5, keys: 1e5 },
    ]);
    expect(growthSteps(1e3)).toEqual([{ accounts: 1e3, keys: 0 }]);
  });
});

function run(over: Partial<GrowthRun>): GrowthRun {
  return {
    step: 1,
    pair: 1,
    target: 'keel',
    accounts: { rows: 1000, mb: 0.25 },
    keys: { rows: 0, mb: 0.02 },
    okPerS: 1000,
    latencyMs: { p50: 10, p99: 40 },
    readP99Ms: 30,
    transferP99Ms: 50,
    errors: 0,
    appMs: 1,
    postgresMs: 0.5,
    swept: 0,
    ...over,
  };
}

const runs = [
  run({}),
  run({ target: 'baseline', appMs: 0.5, latencyMs: { p50: 8, p99: 20 } }),
  run({
    step: 2,
    accounts: { rows: 1_000_000, mb: 151.46 },
    keys: { rows: 120_000, mb: 40.04 },
    appMs: 1.5,
    latencyMs: { p50: 12, p99: 80 },
    swept: 2213,
  }),
  run({
    step: 2,
    target: 'baseline',
    accounts: { rows: 1_000_000, mb: 151.46 },
    keys: { rows: 118_000, mb: 40.04 },
    appMs: 0.6,
    latencyMs: { p50: 9, p99: null },
  }),
];

describe('the growth tables', () => {
  test('one row per run, with the sizes, the figures and what the sweep did', () => {
    const rows = growthRows(runs);
    expect(rows).toHaveLength(5);
    expect(rows[0]).toContain('app CPU ms/ans');
    const header = rows[0]!;
    const cell = (r: number, name: string) => rows[r]![header.indexOf(name)];
    expect(cell(3, 'accounts')).toBe('1.00M');
    expect(cell(3, 'accounts MB')).toBe('151.5');
    expect(cell(3, 'keys')).toBe('120k');
    expect(cell(3, 'keys swept')).toBe('2213');
    expect(cell(4, 'keys swept')).toBe('no sweep');
    expect(cell(4, 'p99 ms')).toBe('-');
    expect(cell(1, 'app CPU ms/ans')).toBe('1.000');
  });

  test('ratios: Keel against the baseline, and each against its own first step', () => {
    const rows = growthRatioRows(runs);
    expect(rows).toHaveLength(3);
    expect(rows[1]).toEqual([
      '1',
      '1000 / 0',
      '2.00x',
      '2.00x',
      '1.00x',
      '1.00x',
      '1.00x',
      '1.00x',
    ]);
    // The baseline's p99 at step 2 is missing: its ratios show '-', not a number.
    expect(rows[2]).toEqual(['2', '1.00M / 120k', '2.50x', '-', '1.50x', '1.20x', '2.00x', '-']);
  });

  test("the LATEST.md section holds the run's settings and the tables as given", () => {
    const md = growthSection({
      startedAt: new Date('2026-12-07T22:00:00Z'),
      steps: growthSteps(1e6),
      opts: growthOpts([], values({})),
      table: growthRows(runs),
      ratios: growthRatioRows(runs),
      ledger: 'ledger check: sum(balance) = sum(opening_balance)',
      machine: '2 vCPU test',
    });
    expect(md).toMatch(
      /^## How cost grows with the tables \(`npm run bench -- --growth`, 2026-12-07T22:00Z\)/,
    );
    expect(md).toContain('accounts 1000 -> 100000 -> 1000000 rows');
    expect(md).toContain('keys 0 -> 100000 -> 1000000 seeded');
    expect(md).toContain('2 s warm-up + 6 s measured');
    expect(md).toContain('| 2 | keel | 1.00M | 151.5 | 120k | 40.0 | 1000 |');
    expect(md).toContain('Machine: 2 vCPU test.');
  });
});
