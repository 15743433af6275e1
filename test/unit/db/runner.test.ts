/**
 * The retry loop at its seam: a unit of work that fails the way the driver fails (a dead
 * connection, a serialization failure), a clock that only moves when the loop waits, and a
 * fixed `random`. No database: the work never touches `sql`.
 */
import { DEADLINE } from '../../../src/db/runner';
import { createUnitDb } from '../../support/unit-db';

const setup = createUnitDb;

const failing = (code: string) => Object.assign(new Error(`driver says ${code}`), { code });

/** A unit that fails with `code` `times` times, then answers 'ok'. */
function flaky(code: string, times: number) {
  let calls = 0;
  const work = async () => {
    calls += 1;
    if (calls <= times) throw failing(code);
    return 'ok';
  };
  return { work, calls: () => calls };
}

test('backoff doubles from 20 ms, is capped at 1 s, and stops at the budget with a 503', async () => {
  const { db, stats, waits, clock } = setup({ budgetMs: 3000 });
  const start = clock.t;
  const unit = flaky('40001', Infinity);
  await expect(db.read(unit.work, { deadline: start + 60_000 })).rejects.toMatchObject({
    status: 503,
    code: 'database_unavailable',
    headers: { 'Retry-After': '2' },
  });
  // random() = 1: the full cap each time; the next 1000 ms wait would pass 3000 ms.
  expect(waits).toEqual([20, 40, 80, 160, 320, 640, 1000]);
  expect(unit.calls()).toBe(8);
  expect(clock.t - start).toBe(2260);
  expect(stats.retries).toBe(7);
  expect(stats.retryOutcomes.exhausted).toBe(1);
});

test('full jitter: each wait is random() times the cap', async () => {
  const rolls = [0.5, 0.25, 0, 0.75];
  const { db, waits, clock } = setup({ random: () => rolls.shift() ?? 0 });
  const unit = flaky('40P01', 4);
  await expect(db.read(unit.work, { deadline: clock.t + 60_000 })).resolves.toBe('ok');
  expect(waits).toEqual([10, 10, 0, 120]);
});

test('the request deadline ends the budget before budgetMs does', async () => {
  const { db, waits, clock } = setup({ budgetMs: 60_000 });
  const unit = flaky('ECONNRESET', Infinity);
  await expect(db.read(unit.work, { deadline: clock.t + 100 })).rejects.toMatchObject({
    code: 'database_unavailable',
  });
  // 20 + 40 = 60 ms waited; another 80 would end after the deadline, so it is not taken.
  expect(waits).toEqual([20, 40]);
  expect(unit.calls()).toBe(3);
});

test('a unit that fails on dead connections and then answers returns its answer', async () => {
  const { db, stats, waits, clock } = setup();
  const unit = flaky('ECONNRESET', 2);
  await expect(db.read(unit.work, { deadline: clock.t + 60_000 })).resolves.toBe('ok');
  expect(waits).toHaveLength(2);
  expect(stats.retryOutcomes.recovered).toBe(1);
  expect(db.breaker.isOpen()).toBe(false);
});

test('an error that is not transient is not retried', async () => {
  const { db, waits, clock } = setup();
  const unit = flaky('23505', Infinity);
  await expect(db.read(unit.work, { deadline: clock.t + 60_000 })).rejects.toMatchObject({
    code: '23505',
  });
  expect(unit.calls()).toBe(1);
  expect(waits).toEqual([]);
});

test('no attempt starts once the request is aborted: 499 for a client gone, 503 at the deadline', async () => {
  const { db, clock } = setup();
  const unit = flaky('ECONNRESET', 0);
  const gone = new AbortController();
  gone.abort();
  await expect(
    db.read(unit.work, { deadline: clock.t + 60_000, signal: gone.signal }),
  ).rejects.toMatchObject({ status: 499, code: 'client_closed_request' });
  const late = new AbortController();
  late.abort(DEADLINE);
  await expect(
    db.read(unit.work, { deadline: clock.t + 60_000, signal: late.signal }),
  ).rejects.toMatchObject({ status: 503, code: 'database_unavailable' });
  expect(unit.calls()).toBe(0);
});
