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

/** Every slot held, and one more unit waiting for one with this request deadline. */
async function oneWaiting(deadlineInBudgets: number, work: (clock: { t: number }) => string) {
  const { db, stats, clock } = setup();
  const start = clock.t;
  const holders = Array.from({ length: SLOTS }, () => holder(db, start + 1_000_000));
  await settle();
  expect(db.admission.active()).toBe(SLOTS);
  const waiting = db.read(async () => work(clock), {
    deadline: start + deadlineInBudgets * BUDGET_MS,
  });
  await settle();
  expect(db.admission.waiting()).toBe(1);
  const finish = async () => {
    holders[1]!.done();
    await Promise.all(holders.map((h) => h.answer));
  };
  return { stats, clock, start, waiting, freeOne: () => holders[0]!.done(), finish };
}

test('a unit that waits for a connection longer than its budget, within its request deadline, is served and gets its whole budget', async () => {
  let startedAt: number | null = null;
  const gate = await oneWaiting(10, (clock) => {
    startedAt = clock.t;
    // Its query takes most of a budget: fine, the budget is counted from here.
    clock.t += BUDGET_MS - 50;
    return 'served';
  });
  // Three budgets later a connection frees up, long before the request deadline.
  gate.clock.t += 3 * BUDGET_MS;
  gate.freeOne();
  await expect(gate.waiting).resolves.toBe('served');
  expect(startedAt).toBe(gate.start + 3 * BUDGET_MS);
  expect(gate.stats.shed.deadline).toBe(0);
  await gate.finish();
});

test('the request deadline still ends the wait: the unit is refused without starting', async () => {
  let started = false;
  const gate = await oneWaiting(2, () => {
    started = true;
    return 'served';
  });
  gate.clock.t += 2 * BUDGET_MS;
  gate.freeOne();
  await expect(gate.waiting).rejects.toMatchObject({ status: 503, code: 'database_unavailable' });
  expect(started).toBe(false);
  expect(gate.stats.shed.deadline).toBe(1);
  await gate.finish();
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
