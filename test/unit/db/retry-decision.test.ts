import { retryDecision } from '../../../src/db/retry-decision';

test('only dead connections and retryable server errors are tried again', () => {
  for (const kind of ['timeout', 'constraint', 'other', 'shutdown'] as const)
    expect(retryDecision(kind, 0, 10_000, () => 0.5)).toEqual({ retry: false, exhausted: false });
  expect(retryDecision('connection', 0, 10_000, () => 0.5)).toEqual({ retry: true, delayMs: 10 });
  expect(retryDecision('retryable', 0, 10_000, () => 0.5)).toEqual({ retry: true, delayMs: 10 });
});

test('full jitter up to 20 ms doubling per attempt, capped at one second', () => {
  const whole = (attempt: number) => retryDecision('connection', attempt, 10_000, () => 1);
  expect([0, 1, 2, 3, 4, 5, 6, 7].map((a) => (whole(a) as { delayMs: number }).delayMs)).toEqual([
    20, 40, 80, 160, 320, 640, 1000, 1000,
  ]);
  expect(retryDecision('connection', 3, 10_000, () => 0)).toEqual({ retry: true, delayMs: 0 });
});

test('a wait that does not fit in what is left of the budget is exhausted instead', () => {
  expect(retryDecision('connection', 2, 80, () => 1)).toEqual({ retry: false, exhausted: true });
  expect(retryDecision('connection', 2, 81, () => 1)).toEqual({ retry: true, delayMs: 80 });
});
