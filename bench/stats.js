'use strict';
/** Figures from a load recording: window summaries, percentiles and a bucketed timeline. */
const { READ, TRANSFER } = require('./load');

/** Nearest-rank percentile of an ascending-sorted array. */
function percentile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function latencyFigures(values) {
  const sorted = Float64Array.from(values).sort();
  return {
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p99: percentile(sorted, 0.99),
    max: sorted.length ? sorted[sorted.length - 1] : null,
  };
}

/**
 * Answers completed in [fromMs, toMs): ops/s counts 2xx only; latencies cover every answer
 * (any status); a socket error (status 0) has no latency and counts as an error.
 */
function summarise(view, fromMs, toMs) {
  const seconds = (toMs - fromMs) / 1000;
  const all = [];
  const byKind = { [READ]: [], [TRANSFER]: [] };
  const byStatus = {};
  let ok = 0;
  let non2xx = 0;
  let socketErrors = 0;
  for (let i = 0; i < view.n; i++) {
    const at = view.at[i];
    if (at < fromMs || at >= toMs) continue;
    const status = view.status[i];
    if (status === 0) {
      socketErrors += 1;
      continue;
    }
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    if (status >= 200 && status < 300) ok += 1;
    else non2xx += 1;
    all.push(view.ms[i]);
    byKind[view.kind[i]].push(view.ms[i]);
  }
  return {
    seconds,
    answered: all.length,
    ok,
    opsPerS: ok / seconds,
    latencyMs: latencyFigures(all),
    readsMs: latencyFigures(byKind[READ]),
    transfersMs: latencyFigures(byKind[TRANSFER]),
    non2xx,
    socketErrors,
    byStatus,
  };
}

/**
 * Fixed buckets over [0, endMs): counts by outcome class and latency percentiles per bucket.
 */
function timeline(view, bucketMs, endMs) {
  const n = Math.ceil(endMs / bucketMs);
  const buckets = Array.from({ length: n }, (_, i) => ({
    t: (i * bucketMs) / 1000,
    ok: 0,
    s503: 0,
    otherErr: 0,
    socket: 0,
    lat: [],
  }));
  for (let i = 0; i < view.n; i++) {
    const b = buckets[Math.floor(view.at[i] / bucketMs)];
    if (!b) continue;
    const status = view.status[i];
    if (status === 0) b.socket += 1;
    else if (status >= 200 && status < 300) b.ok += 1;
    else if (status === 503) b.s503 += 1;
    else b.otherErr += 1;
    if (status !== 0) b.lat.push(view.ms[i]);
  }
  return buckets.map(({ lat, ...b }) => {
    const f = latencyFigures(lat);
    return { ...b, p50: f.p50, p99: f.p99, max: f.max };
  });
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return 0;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

module.exports = { percentile, latencyFigures, summarise, timeline, median };
