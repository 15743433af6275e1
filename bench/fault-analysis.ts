/**
 * Turns the fault run's recording into figures per fault: answers by status from the fault's
 * start to the next fault's, the lowest 1 s throughput, and the recovery time.
 *
 * Recovery: from the fault's end to the first moment from which every 1 s window of the next
 * 2 s carries at least RECOVERY_SHARE of the steady level: the median 1 s level over the calm
 * stretches (after warm-up, outside every fault and the `calmAfterMs` after it). Resolution: one
 * bucket (250 ms).
 */
import type { View } from './load';
import type { CpuPoint } from './sampler';
import { median, summarise, timeline } from './stats';

/** One injected fault, in load-elapsed ms. */
export interface Fault {
  name: string;
  start: number;
  end: number;
  outageMs: number;
  detail: string;
}

export type FaultAnalysis = ReturnType<typeof analyseFaults>;

// 80 %: one-second windows on a shared 2-vCPU box swing ±10 % around the steady level.
const RECOVERY_SHARE = 0.8;
const STAY_MS = 2000;

/** Mean share of the box's CPU used by other processes in [fromMs, toMs). */
function othersShare(cpu: CpuPoint[], fromMs: number, toMs: number): number | null {
  const points = cpu.filter((p) => p.t * 1000 >= fromMs && p.t * 1000 < toMs);
  return points.length ? points.reduce((a, p) => a + p.others, 0) / points.length : null;
}

function analyseFaults(
  view: View,
  faults: Fault[],
  {
    bucketMs,
    endMs,
    warmupMs,
    calmAfterMs,
    retryBudgetMs,
    cpu = [],
  }: {
    bucketMs: number;
    endMs: number;
    warmupMs: number;
    calmAfterMs: number;
    retryBudgetMs: number;
    cpu?: CpuPoint[];
  },
) {
  const tl = timeline(view, bucketMs, endMs);
  const perS = Math.round(1000 / bucketMs);
  // 2xx per second in the 1 s window that starts at bucket i (null past the end).
  const level = (i: number): number | null => {
    if (i < 0 || i + perS > tl.length) return null;
    let ok = 0;
    for (let j = i; j < i + perS; j++) ok += tl[j]!.ok;
    return ok;
  };
  const calm = (from: number, to: number) =>
    faults.every((f) => to <= f.start || from >= f.end + calmAfterMs);
  const steadyLevels: number[] = [];
  for (let i = Math.ceil(warmupMs / bucketMs); i + perS <= tl.length; i++) {
    if (calm(i * bucketMs, (i + perS) * bucketMs)) steadyLevels.push(level(i)!);
  }
  const steadyOpsPerS = median(steadyLevels);
  const floor = RECOVERY_SHARE * steadyOpsPerS;

  const results = faults.map((f, k) => {
    const until = faults[k + 1]?.start ?? endMs;
    const s = summarise(view, f.start, until);
    const first = Math.ceil(f.end / bucketMs);
    const last = Math.floor(until / bucketMs);
    const stay = Math.round(STAY_MS / bucketMs);
    let recoveredAt: number | null = null;
    for (let i = first; i <= last && recoveredAt === null; i++) {
      let holds = true;
      for (let j = i; j <= i + stay - perS && holds; j++) {
        const l = level(j);
        holds = l !== null && l >= floor;
      }
      if (holds) recoveredAt = i * bucketMs;
    }
    let lowest = Infinity;
    for (let i = Math.floor(f.start / bucketMs); i <= (recoveredAt ?? until) / bucketMs; i++) {
      const l = level(i);
      if (l !== null) lowest = Math.min(lowest, l);
    }
    const s503 = s.byStatus[503] ?? 0;
    const otherNon2xx = s.non2xx - s503;
    const allowed503 = f.outageMs >= retryBudgetMs;
    const recoveryMs = recoveredAt === null ? null : Math.max(0, recoveredAt - f.end);
    return {
      ...f,
      windowEndMs: until,
      ok: s.ok,
      s503,
      otherNon2xx,
      socketErrors: s.socketErrors,
      byStatus: s.byStatus,
      maxLatencyMs: s.latencyMs.max,
      lowestOpsPerS: Number.isFinite(lowest) ? lowest : null,
      othersCpu: othersShare(cpu, f.start, until),
      recoveryMs,
      allowed503,
      errorsOk: otherNon2xx === 0 && s.socketErrors === 0 && (s503 === 0 || allowed503),
      recoveryOk: recoveryMs !== null && recoveryMs <= 1000,
    };
  });

  const whole = summarise(view, 0, endMs);
  const before = summarise(view, 0, faults[0]?.start ?? endMs);
  const sec = (ms: number) => (ms / 1000).toFixed(1);
  const pctOf = (share: number | null) => (share === null ? '-' : `${Math.round(share * 100)} %`);
  const rows = [
    [
      'fault',
      'at s',
      'outage s',
      '2xx',
      '503',
      'other non-2xx',
      'sock err',
      'max ms',
      'lowest 1 s',
      'recovery s',
      'others CPU',
      'verdict',
    ],
    [
      'before the first fault',
      '0.0',
      '-',
      String(before.ok),
      String(before.byStatus[503] ?? 0),
      String(before.non2xx - (before.byStatus[503] ?? 0)),
      String(before.socketErrors),
      before.latencyMs.max?.toFixed(0) ?? '-',
      '-',
      '-',
      pctOf(othersShare(cpu, 0, faults[0]?.start ?? endMs)),
      before.non2xx + before.socketErrors === 0 ? 'ok' : 'errors',
    ],
    ...results.map((r) => [
      r.name,
      sec(r.start),
      r.outageMs ? sec(r.outageMs) : '-',
      String(r.ok),
      String(r.s503),
      String(r.otherNon2xx),
      String(r.socketErrors),
      r.maxLatencyMs?.toFixed(0) ?? '-',
      r.lowestOpsPerS === null ? '-' : String(r.lowestOpsPerS),
      r.recoveryMs === null ? 'not in gap' : sec(r.recoveryMs),
      pctOf(r.othersCpu),
      [r.errorsOk ? null : 'errors', r.recoveryOk ? null : 'slow recovery']
        .filter(Boolean)
        .join(', ') || 'ok',
    ]),
  ];
  return {
    timeline: tl,
    steadyOpsPerS,
    recoveryThreshold: RECOVERY_SHARE,
    faults: results,
    totals: { byStatus: whole.byStatus, socketErrors: whole.socketErrors, ok: whole.ok },
    rows,
  };
}

export { analyseFaults, RECOVERY_SHARE };
