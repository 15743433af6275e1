/**
 * The ablation table's arithmetic (`--reads --ablate`): what each layer costs at the margin.
 *
 * A round runs full Keel between every two layers (K L1 K L2 K … Ln K), so a layer's runs sit
 * among full ones. On this box a run now and then lands in a slower phase of the machine, seen
 * in every process at once (Postgres and wrk spend more per answer too, with no other process
 * busy): one such run in an A/B pair makes a layer look large or negative. So the reference is
 * the median of all full-Keel runs of the session, each layer's figure the median of its own
 * runs, and the noise floor the spread of the full runs (their interquartile range): a layer
 * whose difference is inside it, or whose runs fall on both sides of the full median, costs less
 * than this method can resolve.
 */
import { median } from './stats';
import type * as out from './output';

export interface AblationRun {
  target: string;
  /** ms of app CPU (workers + supervisor) per answer. */
  appMs: number;
  rps: number;
  /** False when a worker was replaced inside the window (its CPU is unreadable). */
  valid: boolean;
}

/** Lower and upper quartile (the medians of each half, the middle value in neither). */
export function quartiles(values: number[]): [number, number] {
  const s = [...values].sort((a, b) => a - b);
  const half = Math.floor(s.length / 2);
  return [median(s.slice(0, half)), median(s.slice(s.length - half))];
}

const f = (v: number, d = 3) => v.toFixed(d);

/**
 * A layer's difference counts when it is larger than the noise floor and every one of its runs
 * lies on the same side of the full runs' median: a median moved by one or two runs in a slow
 * phase of the box (seen: a layer "costing" -22 %) is not a measurement.
 */
function resolved(delta: number, offs: AblationRun[], fullMs: number, noise: number): string {
  if (Math.abs(delta) <= noise) return 'no: inside the noise floor';
  const sameSide = offs.every((r) => Math.sign(fullMs - r.appMs) === Math.sign(delta));
  return sameSide ? 'yes' : 'no: its runs disagree';
}

export interface Ablation {
  rows: out.Rows;
  full: { n: number; medianMs: number; q1: number; q3: number; medianRps: number };
}

export function ablationTable(runs: AblationRun[], layers: string[]): Ablation {
  const full = runs.filter((r) => r.target === 'keel' && r.valid);
  const fullMs = median(full.map((r) => r.appMs));
  const fullRps = median(full.map((r) => r.rps));
  const [q1, q3] = full.length >= 4 ? quartiles(full.map((r) => r.appMs)) : [fullMs, fullMs];
  const noise = q3 - q1;
  const header = [
    'layer off',
    'CPU ms/req of each run',
    'median',
    'marginal CPU ms/req',
    'share of Keel',
    'req/s vs Keel',
    'resolved',
  ];
  const rows = layers.map((layer) => {
    const offs = runs.filter((r) => r.target === `keel -${layer}` && r.valid);
    if (offs.length === 0 || full.length === 0)
      return [layer, 'no valid run', '-', '-', '-', '-', '-'];
    const offMs = median(offs.map((r) => r.appMs));
    const delta = fullMs - offMs;
    return [
      layer,
      offs.map((r) => f(r.appMs)).join(' / '),
      f(offMs),
      f(delta),
      `${f((delta / fullMs) * 100, 0)} %`,
      `${f(median(offs.map((r) => r.rps)) / fullRps, 2)}x`,
      resolved(delta, offs, fullMs, noise),
    ];
  });
  return {
    rows: [header, ...rows],
    full: { n: full.length, medianMs: fullMs, q1, q3, medianRps: fullRps },
  };
}
