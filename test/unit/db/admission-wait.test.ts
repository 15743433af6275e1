/**
 * The gate and the runner together, when the retry budget (DB_RETRY_BUDGET_MS) is shorter than
 * the request deadline: waiting for a first connection is bounded by the request deadline, the
 * budget for the database work starts when the unit gets one. A clock that moves only when the
 * test moves it; the work never touches `sql`.
 */
import type { Db } from '../../../src/db/runner';
import { createUnitDb } from '../../support/unit-db';

const SLOTS = 2;
// Long in real time as well: the runner's and the gate's timers are real, set from the fake
// clock; none may fire while the test runs, however loaded the machine.
const BUDGET_MS = 60_000;

const setup = () => createUnitDb({ budgetMs: BUDGET_MS, slots: SLOTS });

/** A read that holds its connection until `done()` is called. */
function holder(db: Db, deadline: number) {
  let done!: () => void;
  const held = new Promise<void>((resolve) => (done = resolve));
  const answer = db.read(
    async () => {
      await held;
      return 'held';
    },
    { deadline },
  );
  return { done, answer };
}

const settle = () => new Promise((r) => setImmediate(r));

test('a unit that waits for a connection longer than its budget, within its request deadline, is served and gets its whole budget', async () => {
  const { db, stats, clock } = setup();
  const start = clock.t;
  const holders = Array.from({ length: SLOTS }, () => holder(db, start + 1_000_000));
  await settle();
  expect(db.admission.active()).toBe(SLOTS);

  let startedAt: number | null = null;
  const waiting = db.read(
    async () => {
      startedAt = clock.t;
      // Its query takes most of a budget: fine, the budget is counted from here.
      clock.t += BUDGET_MS - 50;
      return 'served';
    },
    { deadline: start + 10 * BUDGET_MS },
  );
  await settle();
  expect(db.admission.waiting()).toBe(1);

  // Three budgets later a connection frees up, long before the request deadline.
  clock.t += 3 * BUDGET_MS;
  holders[0]!.done();
  await expect(waiting).resolves.toBe('served');
  expect(startedAt).toBe(start + 3 * BUDGET_MS);
  expect(stats.shed.deadline).toBe(0);

  holders[1]!.done();
  await Promise.all(holders.map((h) => h.answer));
});

test('the request deadline still ends the wait: the unit is refused without starting', async () => {
  const { db, stats, clock } = setup();
  const start = clock.t;
  const holders = Array.from({ length: SLOTS }, () => holder(db, start + 1_000_000));
  await settle();
  let started = false;
  const waiting = db.read(
    async () => {
      started = true;
      return 'served';
    },
    { deadline: start + 2 * BUDGET_MS },
  );
  await settle();
  clock.t += 2 * BUDGET_MS;
  holders[0]!.done();
  await expect(waiting).rejects.toMatchObject({ status: 503, code: 'database_unavailable' });
  expect(started).toBe(false);
  expect(stats.shed.deadline).toBe(1);
  holders[1]!.done();
  await Promise.all(holders.map((h) => h.answer));
});

test('a retry waits for a connection within the budget only', async () => {
  const { db, stats, clock } = setup();
  const start = clock.t;
  let calls = 0;
  let failNow!: () => void;
  const failing = new Promise<void>((resolve) => (failNow = resolve));
  // Its first attempt holds a connection until told to fail retryably (a serialization failure).
  const unit = db.read(
    async () => {
      calls += 1;
      if (calls === 1) {
        await failing;
        throw Object.assign(new Error('could not serialize access'), { code: '40001' });
      }
      return 'retried';
    },
    { deadline: start + 1_000_000 },
  );
  const other = holder(db, start + 1_000_000);
  await settle();
  // A third unit waits; it gets the connection the failed attempt gives back.
  const third = holder(db, start + 1_000_000);
  await settle();
  failNow();
  await settle();
  expect(db.admission.waiting()).toBe(1);
  // The retry's wait outlasts the budget (counted from the first connection): refused.
  clock.t += BUDGET_MS + 1;
  other.done();
  await expect(unit).rejects.toMatchObject({ status: 503, code: 'database_unavailable' });
  expect(calls).toBe(1);
  expect(stats.shed.deadline).toBe(1);
  third.done();
  await Promise.all([other.answer, third.answer]);
});
