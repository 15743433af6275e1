/** What a diagnose check returns, the report both outputs are built from, and the exit code. */
import type { IdleProbeResult } from './idle-types';

export type Status = 'ok' | 'warn' | 'fail';
export type Section =
  'path' | 'replication' | 'latency' | 'server' | 'pooler' | 'budget' | 'keel' | 'idle';

export interface Check {
  /** Stable id, `<section>.<name>`. */
  id: string;
  section: Section;
  status: Status;
  /** The measured value (a number with its unit, or a short text). */
  value: number | string | null;
  unit: 'ms' | 's' | 'connections' | null;
  /** What was found, in one sentence. */
  summary: string;
  /** What to do about it; null when nothing needs doing. */
  fix: string | null;
  /** The figures behind the verdict. */
  data: Record<string, unknown>;
}

export interface Report {
  schema: 'keel-diagnose/1';
  keelVersion: string;
  startedAt: string;
  durationMs: number;
  target: { url: string; migrationUrl: string; embedded: boolean };
  status: Status;
  exitCode: 0 | 1 | 2;
  counts: Record<Status, number>;
  checks: Check[];
  idleProbe: IdleProbeResult | null;
}

export function check(
  id: `${Section}.${string}`,
  status: Status,
  value: Check['value'],
  unit: Check['unit'],
  summary: string,
  fix: string | null = null,
  data: Record<string, unknown> = {},
): Check {
  return { id, section: id.split('.')[0] as Section, status, value, unit, summary, fix, data };
}

export function worst(statuses: Status[]): Status {
  return statuses.includes('fail') ? 'fail' : statuses.includes('warn') ? 'warn' : 'ok';
}

const EXIT: Record<Status, 0 | 1 | 2> = { ok: 0, warn: 1, fail: 2 };

export function buildReport(
  base: Pick<Report, 'keelVersion' | 'startedAt' | 'durationMs' | 'target'>,
  checks: Check[],
  idleProbe: IdleProbeResult | null,
): Report {
  const status = worst(checks.map((c) => c.status));
  const counts = { ok: 0, warn: 0, fail: 0 };
  for (const c of checks) counts[c.status] += 1;
  return {
    schema: 'keel-diagnose/1',
    ...base,
    status,
    exitCode: EXIT[status],
    counts,
    checks,
    idleProbe,
  };
}

function shown(c: Check): string {
  if (c.value === null) return '-';
  if (typeof c.value === 'number') {
    const n = Number.isInteger(c.value) ? String(c.value) : c.value.toFixed(c.value < 10 ? 2 : 1);
    return c.unit && c.unit !== 'connections' ? `${n} ${c.unit}` : n;
  }
  return c.value;
}

/** One line per check: status, id, measured value, what was found and what to do. */
export function renderHuman(report: Report): string {
  const idWidth = Math.max(...report.checks.map((c) => c.id.length), 10);
  const lines = [
    `keel diagnose ${report.keelVersion}: ${report.target.url}` +
      (report.target.migrationUrl !== report.target.url
        ? ` (migrations: ${report.target.migrationUrl})`
        : ''),
  ];
  for (const c of report.checks) {
    const fix = c.fix ? ` -> ${c.fix}` : '';
    lines.push(`${c.status.padEnd(4)}  ${c.id.padEnd(idWidth)}  ${shown(c)}: ${c.summary}${fix}`);
  }
  const { ok, warn, fail } = report.counts;
  lines.push(
    `${ok} ok, ${warn} warn, ${fail} fail in ${(report.durationMs / 1000).toFixed(1)} s: exit ${report.exitCode}`,
  );
  return lines.join('\n') + '\n';
}
