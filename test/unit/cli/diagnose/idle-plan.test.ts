import { bisect, bracket, ladder, tolerance } from '../../../../src/cli/diagnose/idle-plan';
import type { IdleSample } from '../../../../src/cli/diagnose/idle-types';

test('the ladder climbs geometrically from 1/64 of --max to --max', () => {
  const rungs = ladder(900_000, 8);
  expect(rungs[0]).toBe(14063);
  expect(rungs[7]).toBe(900_000);
  // Every rung is the last times 64^(1/7) = 1.81.
  for (let i = 1; i < 8; i++) expect(rungs[i]! / rungs[i - 1]!).toBeCloseTo(64 ** (1 / 7), 2);
  const short = ladder(5000, 6);
  expect(short[0]).toBe(500);
  expect(short[5]).toBe(5000);
});

test('bisection spreads k points strictly inside the bracket', () => {
  expect(bisect(1000, 2000, 4)).toEqual([1200, 1400, 1600, 1800]);
});

test('tolerance: a quarter second, or 2 % of long cutoffs', () => {
  expect(tolerance(2000)).toBe(250);
  expect(tolerance(300_000)).toBe(6000);
});

const sample = (
  idleMs: number,
  alive: boolean,
  diedAtMs: number | null = null,
  keepAliveS: number | null = null,
): IdleSample => ({
  idleMs,
  alive,
  death: alive ? null : 'fin',
  diedAtMs,
  keepAliveS,
});

test('the bracket is the longest survivor and the shortest death, where the death was seen', () => {
  expect(
    bracket([
      sample(1000, true),
      sample(1500, true),
      sample(4000, false, 2100),
      sample(8000, false, 2120),
    ]),
  ).toEqual({ lo: 1500, hi: 2100 });
  expect(bracket([sample(1000, true)])).toEqual({ lo: 1000, hi: null });
  // Keepalive connections say nothing about the bare cutoff.
  expect(
    bracket([sample(1000, true), sample(3000, true, null, 1), sample(2500, false, 2500)]),
  ).toEqual({ lo: 1000, hi: 2500 });
  // A late sweep lets a survivor pass the first death: the bracket widens instead of inverting.
  expect(bracket([sample(2200, true), sample(3000, false, 2100)])).toEqual({ lo: 2100, hi: 2200 });
});
