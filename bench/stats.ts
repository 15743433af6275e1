/** Figures from a load recording: window summaries, percentiles and a bucketed timeline. */
import { READ, TRANSFER, type View } from './load';

export interface Latency {
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
}

export type Summary = ReturnType<typeof summarise>;

/** Nearest-rank percentile of an ascending-sorted array. */
function percentile(sorted: ArrayLike<number>, q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[
    Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  ] as number;
}

function latencyFigures(values: ArrayLike<number>): Latency {
  const sorted = Float64Array.from(values).sort();
  return {
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p99: percentile(sorted, 0.99),
    max: sorted.length ? (sorted[sorted.length - 1] as number) : null,
  };
}

/**
 * Answers completed in [fromMs, toMs): ops/s counts 2xx only; latencies cover every answer
 * (any status); a socket error (status 0) has no latency and counts as an error.
 */
function summarise(
  view: Pick<View, 'n' | 'at' | 'ms' | 'status' | 'kind'>,
  fromMs: number,
  toMs: number,
) {
  const seconds = (toMs - fromMs) / 1000;
  const all: number[] = [];
  const reads: number[] = [];
  const transfers: number[] = [];
  const byKind: Record<number, number[]> = { [READ]: reads, [TRANSFER]: transfers };
  const byStatus: Record<number, number> = {};
  let ok = 0;
  let non2xx = 0;
  let socketErrors = 0;
  for (let i = 0; i < view.n; i++) {
    const at = view.at[i] as number;
    if (at < fromMs || at >= toMs) continue;
    const status = view.status[i] as number;
    if (status === 0) {
      socketErrors += 1;
      continue;
    }
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    if (status >= 200 && status < 300) ok += 1;
    else non2xx += 1;
    all.push(view.ms[i] as number);
    byKind[view.kind[i] as number]?.push(view.ms[i] as number);
  }
  return {
    seconds,
    answered: all.length,
    ok,
    opsPerS: ok / seconds,
    latencyMs: latencyFigures(all),
    readsMs: latencyFigures(reads),
    transfersMs: latencyFigures(transfers),
    non2xx,
    socketErrors,
    byStatus,
  };
}

/**
 * Fixed buckets over [0, endMs): counts by outcome class and latency percentiles per bucket.
 */
function timeline(view: Pick<View, 'n' | 'at' | 'ms' | 'status'>, bucketMs: number, endMs: number) {
  const n = Math.ceil(endMs / bucketMs);
  const buckets = Array.from({ length: n }, (_, i) => ({
    t: (i * bucketMs) / 1000,
    ok: 0,
    s503: 0,
    otherErr: 0,
    socket: 0,
    lat: [] as number[],
  }));
  for (let i = 0; i < view.n; i++) {
    const b = buckets[Math.floor((view.at[i] as number) / bucketMs)];
    if (!b) continue;
    const status = view.status[i] as number;
    if (status === 0) b.socket += 1;
    else if (status >= 200 && status < 300) b.ok += 1;
    else if (status === 503) b.s503 += 1;
    else b.otherErr += 1;
    if (status !== 0) b.lat.push(view.ms[i] as number);
  }
  return buckets.map(({ lat, ...b }) => {
    const f = latencyFigures(lat);
    return { ...b, p50: f.p50, p99: f.p99, max: f.max };
  });
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return 0;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export { percentile, latencyFigures, summarise, timeline, median };
