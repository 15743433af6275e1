/** Schema changes seen by app queries: which errors are transient, and a migration's backoff. */
import { classify, isTransient } from '../../../src/db/errors';
import { migrationBackoff, retryDecision } from '../../../src/db/retry-decision';

test('a lock timeout is its own transient kind, retried within the budget', () => {
  const err = { code: '55P03', message: 'canceling statement due to lock timeout' };
  expect(classify(err)).toBe('lock');
  expect(isTransient(err)).toBe(true);
  expect(retryDecision('lock', 0, 1000, () => 1)).toEqual({ retry: true, delayMs: 20 });
  expect(retryDecision('lock', 0, 10, () => 1)).toEqual({ retry: false, exhausted: true });
});

test('a plan a schema change made stale is retryable; other 0A000s are not', () => {
  const stale = {
    code: '0A000',
    routine: 'RevalidateCachedQuery',
    message: 'cached plan must not change result type',
  };
  expect(classify(stale)).toBe('retryable');
  expect(classify({ code: '0A000', message: 'cached plan must not change result type' })).toBe(
    'retryable',
  );
  expect(classify({ code: '0A000', message: 'cannot use LISTEN in a function' })).toBe('other');
});

test("a migration's backoff: equal jitter over a step doubling from the lock timeout, capped at 5 s", () => {
  expect(migrationBackoff(0, 500, () => 0)).toBe(250);
  expect(migrationBackoff(0, 500, () => 1)).toBe(500);
  expect(migrationBackoff(1, 500, () => 1)).toBe(1000);
  expect(migrationBackoff(3, 500, () => 1)).toBe(4000);
  expect(migrationBackoff(4, 500, () => 1)).toBe(5000);
  expect(migrationBackoff(40, 500, () => 0.5)).toBe(3750);
});
