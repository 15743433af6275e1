/**
 * The ablation table's arithmetic (bench/ablation.ts): medians, not single A/B pairs, so one run
 * in a slow phase of the machine cannot make a layer look expensive or negative. The figures are
 * made up; only the arithmetic is checked.
 */
import { ablationTable, quartiles, type AblationRun } from '../../../bench/ablation';

const run = (target: string, appMs: number, valid = true): AblationRun => ({
  target,
  appMs,
  rps: 1 / appMs,
  valid,
});

test('quartiles are the medians of the lower and upper halves', () => {
  expect(quartiles([1, 2, 3, 4, 5, 6, 7, 8])).toEqual([2.5, 6.5]);
  expect(quartiles([5, 1, 3, 2, 4])).toEqual([1.5, 4.5]);
});

test("a layer's marginal cost is the full runs' median minus its runs' median; it counts beyond the noise floor with every run on its side", () => {
  const runs = [
    ...[0.3, 0.29, 0.31, 0.3, 0.52, 0.3, 0.28].map((ms) => run('keel', ms)),
    run('keel -deadline', 0.25),
    run('keel -deadline', 0.26),
    run('keel -deadline', 0.29),
    run('keel -zod', 0.3),
    run('keel -zod', 0.295),
    run('keel -zod', 0.305),
    // Two slow runs move the median past the floor, but the runs disagree: not resolved.
    run('keel -socket', 0.26),
    run('keel -socket', 0.45),
    run('keel -socket', 0.46),
  ];
  const { rows, full } = ablationTable(runs, ['deadline', 'zod', 'socket']);
  expect(full).toMatchObject({ n: 7, medianMs: 0.3, q1: 0.29, q3: 0.31 });
  expect(rows[0]![3]).toBe('marginal CPU ms/req');
  expect(rows[1]).toEqual([
    'deadline',
    '0.250 / 0.260 / 0.290',
    '0.260',
    '0.040',
    '13 %',
    '1.15x',
    'yes',
  ]);
  expect(rows[2]![6]).toBe('no: inside the noise floor');
  expect(rows[2]![3]).toBe('0.000');
  expect(rows[3]![3]).toBe('-0.150');
  expect(rows[3]![6]).toBe('no: its runs disagree');
});

test('runs with a replaced worker are left out, and a layer with none left says so', () => {
  const runs = [run('keel', 0.3), run('keel', 9, false), run('keel -socket', 0.2, false)];
  const { rows, full } = ablationTable(runs, ['socket']);
  expect(full.n).toBe(1);
  expect(full.medianMs).toBe(0.3);
  expect(rows[1]).toEqual(['socket', 'no valid run', '-', '-', '-', '-', '-']);
});
