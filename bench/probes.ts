/**
 * Health probes during a fault, one at a time as a balancer sends them: `/readyz` and
 * `/healthz` every 100 ms, each answer's status and when it arrived (load-elapsed ms).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import type { View } from './load';

export interface Probe {
  path: string;
  at: number;
  end: number;
  status: number;
}

const EVERY_MS = 100;

function startProbes({ port, elapsed }: { port: number; elapsed: () => number }) {
  const seen: Probe[] = [];
  let running = true;
  const one = async (path: string) => {
    const at = elapsed();
    let status = 0;
    try {
      const res = await request(`http://127.0.0.1:${port}${path}`, {
        headersTimeout: 5000,
        bodyTimeout: 5000,
      });
      status = res.statusCode;
      await res.body.dump();
    } catch {
      status = 0;
    }
    seen.push({ path, at, end: elapsed(), status });
  };
  const done = (async () => {
    while (running) {
      await Promise.all([one('/readyz'), one('/healthz')]);
      await sleep(EVERY_MS);
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      return seen;
    },
  };
}

/**
 * Readiness and recovery figures of a stall from `start` to `end` (load-elapsed ms): when the
 * first `/readyz` 503 arrived, whether `/healthz` stayed 200, when the first 2xx arrived for a
 * request sent after the heal, and how many answers took longer than `deadlineMs`.
 */
function stallFigures({
  probes,
  view,
  start,
  end,
  deadlineMs,
}: {
  probes: Probe[];
  view: View;
  start: number;
  end: number;
  deadlineMs: number;
}) {
  const ready = probes.filter((p) => p.path === '/readyz');
  const first503 = ready.find((p) => p.status === 503 && p.at >= start);
  let first2xx = Infinity;
  let pastDeadline = 0;
  for (let i = 0; i < view.n; i++) {
    const sent = view.at[i]! - view.ms[i]!;
    if (sent >= start && view.ms[i]! > deadlineMs) pastDeadline += 1;
    if (sent >= end && view.status[i]! >= 200 && view.status[i]! < 300) {
      first2xx = Math.min(first2xx, view.at[i]! - end);
    }
  }
  return {
    readyz503AfterMs: first503 ? Math.round(first503.end - start) : null,
    readyzProbesDuringStall: ready.filter((p) => p.at >= start && p.end <= end).length,
    readyz200DuringStall: ready.filter(
      (p) => p.at >= start + 1000 && p.end <= end && p.status === 200,
    ).length,
    healthzAll200: probes.filter((p) => p.path === '/healthz').every((p) => p.status === 200),
    first2xxAfterHealMs: Number.isFinite(first2xx) ? Math.round(first2xx) : null,
    answersPastDeadline: pastDeadline,
  };
}

export { startProbes, stallFigures };
