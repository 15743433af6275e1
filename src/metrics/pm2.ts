/**
 * Live figures for `pm2 monit` / `pm2 show`, through the @pm2/io agent PM2 injects (used as is,
 * never initialised by us: docs/design/pm2.md).
 */
import type { DbStats } from './db-stats';
import { createRecentQuantile, createSnapshots } from './window';

/** The part of the @pm2/io API used here. */
export interface Pm2Io {
  metric(opts: { name: string; value: () => number | string; unit?: string }): unknown;
}

const IO_KEY = Symbol.for('@pm2/io');

/** The agent PM2 injected into this process, or null (not under PM2, or `pmx: false`). */
export function injectedPm2Io(): Pm2Io | null {
  const io = (globalThis as Record<symbol, unknown>)[IO_KEY] as Partial<Pm2Io> | undefined;
  return typeof io?.metric === 'function' ? (io as Pm2Io) : null;
}

export interface Pm2MetricsDeps {
  io: Pm2Io;
  stats: DbStats;
  /** HTTP requests being served (counted by the connection tracker). */
  inFlight: () => number;
  now?: () => number;
}

export interface Pm2Metrics {
  /** One finished request; only API routes count towards the p95. */
  observeRequest(route: string, seconds: number): void;
  /** The current values, as `pm2 show` displays them. */
  values(): Record<string, number | string>;
  stop(): void;
}

/** The worker's newest known migration file (src/worker.ts), read by the contract gate. */
export const PM2_SCHEMA_METRIC = 'schema';

/** The names an operator reads in `pm2 monit`; units are in the names. */
export const PM2_METRICS = [
  'db conns open',
  'db conns busy',
  'queries/s',
  'db errors/min',
  'retries/min',
  'req p95 ms',
  'in flight',
  'db breaker',
] as const;

export function createPm2Metrics(deps: Pm2MetricsDeps): Pm2Metrics {
  const { io, stats } = deps;
  const now = deps.now ?? Date.now;
  const errors = () =>
    Object.entries(stats.queries).reduce(
      // A constraint violation is the caller's data, not a database problem.
      (sum, [outcome, n]) => (outcome === 'ok' || outcome === 'constraint' ? sum : sum + n),
      0,
    );
  const queries = () => Object.values(stats.queries).reduce((a, b) => a + b, 0);
  const history = createSnapshots({
    read: () => ({ queries: queries(), errors: errors(), retries: stats.retries }),
    now,
  });
  // p95 of the last 1000 API requests not older than a minute: at a few hundred requests a
  // second that is the last few seconds, on a quiet worker the last minute.
  const p95 = createRecentQuantile({ size: 1000, maxAgeMs: 60000, now });
  // PM2 reads the values about once a second; the history needs the same resolution.
  const timer = setInterval(history.sample, 1000);
  timer.unref();

  const read: Record<(typeof PM2_METRICS)[number], () => number | string> = {
    'db conns open': () => stats.open,
    'db conns busy': () => stats.busy,
    // Over the last 10 s: steady enough to read, quick enough to show an outage starting.
    'queries/s': () => round(history.rate('queries', 10000)),
    'db errors/min': () => history.delta('errors', 60000),
    'retries/min': () => history.delta('retries', 60000),
    'req p95 ms': () => round(p95.quantile(0.95)),
    'in flight': deps.inFlight,
    'db breaker': () => stats.breakerState,
  };
  for (const name of PM2_METRICS) io.metric({ name, value: read[name] });

  return {
    observeRequest(route, seconds) {
      if (route.startsWith('/api/')) p95.record(seconds * 1000);
    },
    values: () => Object.fromEntries(PM2_METRICS.map((name) => [name, read[name]()])),
    stop: () => clearInterval(timer),
  };
}

function round(v: number): number {
  return Math.round(v * 10) / 10;
}
