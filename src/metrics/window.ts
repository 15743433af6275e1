/** Recent-past arithmetic for live figures: rates from cumulative counters, recent quantiles. */

export interface Snapshots<K extends string> {
  /** Records the counters now (call about once a second). */
  sample(): void;
  /** How much `key` grew over the last `windowMs` (or since the first sample, if younger). */
  delta(key: K, windowMs: number): number;
  /** `delta` per second. */
  rate(key: K, windowMs: number): number;
}

/** A ring of timestamped counter snapshots covering a little over the longest window asked. */
export function createSnapshots<K extends string>(opts: {
  read: () => Record<K, number>;
  now: () => number;
  /** Snapshots kept: 61 one-second samples cover a one-minute window. */
  keep?: number;
}): Snapshots<K> {
  const keep = opts.keep ?? 61;
  const ring: Array<{ t: number; v: Record<K, number> }> = [];

  function sample(): void {
    ring.push({ t: opts.now(), v: opts.read() });
    if (ring.length > keep) ring.shift();
  }

  /** The oldest snapshot within the window, and the counters now. */
  function span(windowMs: number) {
    const t = opts.now();
    const current = opts.read();
    const from = ring.find((s) => t - s.t <= windowMs) ?? { t, v: current };
    return { from, current, seconds: (t - from.t) / 1000 };
  }

  return {
    sample,
    delta(key, windowMs) {
      const { from, current } = span(windowMs);
      return current[key] - from.v[key];
    },
    rate(key, windowMs) {
      const { from, current, seconds } = span(windowMs);
      return seconds > 0 ? (current[key] - from.v[key]) / seconds : 0;
    },
  };
}

export interface RecentQuantile {
  record(value: number): void;
  /** The q-quantile (nearest rank) of the kept values younger than maxAgeMs; 0 when none. */
  quantile(q: number): number;
}

/** The last `size` values, each with its time: O(1) to record, one sort per read. */
export function createRecentQuantile(opts: {
  size: number;
  maxAgeMs: number;
  now: () => number;
}): RecentQuantile {
  const values = new Float64Array(opts.size);
  const times = new Float64Array(opts.size);
  let count = 0;
  let next = 0;
  return {
    record(value) {
      values[next] = value;
      times[next] = opts.now();
      next = (next + 1) % opts.size;
      count = Math.min(count + 1, opts.size);
    },
    quantile(q) {
      const since = opts.now() - opts.maxAgeMs;
      const recent: number[] = [];
      for (let i = 0; i < count; i++) if (times[i]! >= since) recent.push(values[i]!);
      if (recent.length === 0) return 0;
      recent.sort((a, b) => a - b);
      return recent[Math.min(recent.length - 1, Math.max(0, Math.ceil(q * recent.length) - 1))]!;
    },
  };
}
