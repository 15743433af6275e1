/** The figures `pm2 monit` shows, computed from the worker's counters over a fake clock. */
import { createDbStats } from '../../../src/metrics/db-stats';
import { createPm2Metrics, injectedPm2Io, PM2_METRICS, type Pm2Io } from '../../../src/metrics/pm2';
import { createRecentQuantile, createSnapshots } from '../../../src/metrics/window';

test('rates come from counter snapshots over the window, deltas over the last minute', () => {
  let t = 0;
  let n = 0;
  const snaps = createSnapshots({ read: () => ({ n }), now: () => t });
  for (let s = 0; s <= 120; s++) {
    t = s * 1000;
    n = s * 5; // 5 per second
    snaps.sample();
  }
  expect(snaps.rate('n', 10000)).toBe(5);
  expect(snaps.delta('n', 60000)).toBe(300);
  n += 7; // since the last sample
  expect(snaps.delta('n', 60000)).toBe(307);
});

test('a young history reports what it has', () => {
  let t = 0;
  let n = 0;
  const snaps = createSnapshots({ read: () => ({ n }), now: () => t });
  expect(snaps.rate('n', 10000)).toBe(0);
  snaps.sample();
  t = 2000;
  n = 4;
  expect(snaps.delta('n', 60000)).toBe(4);
  expect(snaps.rate('n', 10000)).toBe(2);
});

test('recent quantile: nearest rank over the last values, forgetting old ones', () => {
  let t = 0;
  const q = createRecentQuantile({ size: 100, maxAgeMs: 60000, now: () => t });
  expect(q.quantile(0.95)).toBe(0);
  for (let i = 1; i <= 100; i++) q.record(i);
  expect(q.quantile(0.95)).toBe(95);
  expect(q.quantile(0.5)).toBe(50);
  for (let i = 0; i < 50; i++) q.record(1000); // the ring keeps the last 100: 51..100 and these
  expect(q.quantile(0.5)).toBe(100);
  expect(q.quantile(0.95)).toBe(1000);
  t = 61000;
  expect(q.quantile(0.95)).toBe(0);
});

test('createPm2Metrics registers every figure and reads live values', () => {
  const registered = new Map<string, () => number | string>();
  const io: Pm2Io = { metric: ({ name, value }) => registered.set(name, value) };
  let t = 0;
  const stats = createDbStats();
  let inFlight = 0;
  const m = createPm2Metrics({ io, stats, inFlight: () => inFlight, now: () => t });
  try {
    expect([...registered.keys()]).toEqual([...PM2_METRICS]);
    stats.open = 4;
    stats.busy = 3;
    stats.idle = 1;
    inFlight = 7;
    stats.breakerState = 'open';
    m.observeRequest('/api/accounts/:id', 0.012);
    m.observeRequest('/metrics', 9); // not an API request: not in the p95
    stats.queries.ok = 90;
    stats.queries.connection = 8;
    stats.queries.constraint = 2;
    stats.retries = 6;
    t = 10000;
    expect(m.values()).toEqual({
      'db conns open': 4,
      'db conns busy': 3,
      'queries/s': 0, // no history yet: nothing to compare with
      'db errors/min': 0,
      'retries/min': 0,
      'req p95 ms': 12,
      'in flight': 7,
      'db breaker': 'open',
    });
    expect(registered.get('db conns busy')!()).toBe(3);
  } finally {
    m.stop();
  }
});

test('no injected agent outside PM2', () => {
  expect(injectedPm2Io()).toBeNull();
});
