/**
 * Checks a Prometheus text exposition the strict way: a parser that accepts only what the text
 * format allows (values `NaN`, `+Inf`, `-Inf` or a float; escaped label values; TYPE before
 * samples), and Prometheus' own `promtool check metrics` (Debian's `prometheus` package).
 */
import { spawnSync } from 'node:child_process';

export interface StrictSample {
  name: string;
  labels: Record<string, string>;
  /** The value exactly as written. */
  raw: string;
  value: number;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const VALUE = '(?:NaN|[+-]Inf|[+-]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?)';
const SAMPLE = new RegExp(
  `^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*,?)?\\})? (${VALUE})(?: -?\\d+)?$`,
);

/** Every sample of `text`; throws on the first line the text format does not allow. */
export function parseStrict(text: string): StrictSample[] {
  if (!text.endsWith('\n')) throw new Error('the exposition does not end with a newline');
  const out: StrictSample[] = [];
  const typed = new Set<string>();
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') {
        if (!/^(counter|gauge|histogram|summary|untyped)$/.test(meta[3] ?? ''))
          throw new Error(`bad TYPE line: ${line}`);
        if (typed.has(meta[2]!)) throw new Error(`second TYPE for ${meta[2]}`);
        typed.add(meta[2]!);
      }
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a valid sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!;
    }
    const raw = m[3]!;
    const value =
      raw === 'NaN' ? NaN : raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    out.push({ name: m[1]!, labels, raw, value });
  }
  return out;
}

export interface PromtoolResult {
  /** 0: valid; 1: a parse error; 3: lint findings only. */
  status: number;
  /** Lint findings, one `name problem` line each. */
  findings: Array<{ metric: string; problem: string }>;
  output: string;
}

export function promtoolCheck(text: string): PromtoolResult {
  const r = spawnSync('promtool', ['check', 'metrics'], {
    input: text,
    encoding: 'utf8',
    timeout: 30000,
  });
  if (r.error)
    throw new Error(`promtool not runnable (apt-get install prometheus): ${r.error.message}`);
  const output = `${r.stdout}${r.stderr}`;
  const findings = output
    .split('\n')
    .map((l) => /^([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ metric: m[1]!, problem: m[2]! }));
  return { status: r.status ?? -1, findings, output };
}
