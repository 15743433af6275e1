import { createAdmission, ShedError } from '../../../src/db/admission';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

async function reason(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'granted';
  } catch (err) {
    return err instanceof ShedError ? err.reason : 'other';
  }
}

test('grants up to `slots` at once; while the wait is short, the next are served in order', async () => {
  const c = clock();
  const gate = createAdmission({ slots: 2, now: c.now });
  const a = await gate.acquire(c.now() + 1000);
  await gate.acquire(c.now() + 1000);
  expect(gate.active()).toBe(2);
  const order: string[] = [];
  const third = gate.acquire(c.now() + 1000).then((r) => (order.push('third'), r));
  const fourth = gate.acquire(c.now() + 1000).then((r) => (order.push('fourth'), r));
  expect(gate.waiting()).toBe(2);
  a(true);
  (await third)(true);
  (await fourth)(true);
  expect(order).toEqual(['third', 'fourth']);
});

test('a unit that could not finish even if served next is refused at once, before any work', async () => {
  const c = clock();
  const gate = createAdmission({ slots: 1, now: c.now });
  // One unit that held its slot 100 ms teaches the gate how long a unit takes.
  const first = await gate.acquire(c.now() + 1000);
  c.advance(100);
  first(true);
  const holder = await gate.acquire(c.now() + 1000);
  // 80 ms left is less than one 100 ms hold: no point waiting.
  expect(await reason(gate.acquire(c.now() + 80))).toBe('overload');
  expect(gate.waiting()).toBe(0);
  // 150 ms is enough if it is served next: it waits.
  const patient = gate.acquire(c.now() + 150);
  expect(gate.waiting()).toBe(1);
  holder(true);
  expect(await reason(patient)).toBe('granted');
});

test('a waiter whose deadline passes first never starts; an aborted one leaves the queue', async () => {
  const gate = createAdmission({ slots: 1 });
  const holder = await gate.acquire(Date.now() + 5000);
  const late = gate.acquire(Date.now() + 30);
  const controller = new AbortController();
  const aborted = gate.acquire(Date.now() + 5000, controller.signal);
  controller.abort();
  expect(await reason(aborted)).toBe('aborted');
  expect(await reason(late)).toBe('deadline');
  expect(gate.waiting()).toBe(0);
  holder(true);
  expect(gate.active()).toBe(0);
  expect(await reason(gate.acquire(Date.now()))).toBe('deadline');
});

test('failed holds do not count: after a stall, the gate does not shed what it can serve', async () => {
  const c = clock();
  const gate = createAdmission({ slots: 1, now: c.now });
  const quick = await gate.acquire(c.now() + 1000);
  c.advance(10);
  quick(true);
  // A unit stuck 5 s on a dead connection, then failed.
  const stuck = await gate.acquire(c.now() + 10000);
  const queued = gate.acquire(c.now() + 100);
  c.advance(5000);
  stuck(false);
  expect(await reason(queued)).toBe('deadline');
  const holder = await gate.acquire(c.now() + 1000);
  // The average is still ~10 ms: a 100 ms deadline behind one holder fits.
  const next = gate.acquire(c.now() + 100);
  expect(gate.waiting()).toBe(1);
  holder(true);
  expect(await reason(next)).toBe('granted');
});

function queueOfThree(c: ReturnType<typeof clock>, served: string[]) {
  const gate = createAdmission({ slots: 1, now: c.now });
  const holder = gate.acquire(c.now() + 1000);
  const waiters = ['old', 'middle', 'new'].map((name) =>
    gate.acquire(c.now() + 1000).then((r) => {
      served.push(name);
      return r;
    }),
  );
  expect(gate.waiting()).toBe(3);
  return { holder, waiters };
}

test('a wait longer than the slots but young is still served in order', async () => {
  const c = clock();
  const served: string[] = [];
  const { holder, waiters } = queueOfThree(c, served);
  // The oldest has waited 400 ms of its 1000: not yet half.
  c.advance(400);
  (await holder)(true);
  for (const w of waiters) (await w)(true);
  expect(served).toEqual(['old', 'middle', 'new']);
});

test('once the wait stands (half a budget), the newest waiter is served first', async () => {
  const c = clock();
  const served: string[] = [];
  const { holder, waiters } = queueOfThree(c, served);
  c.advance(600);
  // (Its connection died: the 600 ms hold does not count, so no waiter is too late for one.)
  (await holder)(false);
  // Three have waited 600 ms of 1000 for one slot: the newest goes first.
  (await waiters[2]!)(true);
  expect(served).toEqual(['new']);
  // Two wait for one slot, still more than the slots: newest again.
  (await waiters[1]!)(true);
  (await waiters[0]!)(true);
  expect(served).toEqual(['new', 'middle', 'old']);
});

test('a slow hold teaches the gate: a waiter left with less than a hold never starts', async () => {
  const c = clock();
  const gate = createAdmission({ slots: 1, now: c.now });
  // A unit that held its slot 200 ms and ended in an answer.
  const slow = await gate.acquire(c.now() + 1000);
  c.advance(200);
  slow(true);
  const holder = await gate.acquire(c.now() + 1000);
  const waiter = gate.acquire(c.now() + 500);
  expect(gate.waiting()).toBe(1);
  // By the time the slot frees, only 100 ms of its 500 are left: less than one 200 ms hold.
  c.advance(400);
  holder(true);
  expect(await reason(waiter)).toBe('deadline');
  expect(gate.active()).toBe(0);
});

test('a full wait refuses its oldest waiter, never the newcomer', async () => {
  const c = clock();
  const gate = createAdmission({ slots: 1, maxWaiting: 2, now: c.now });
  const holder = await gate.acquire(c.now() + 1000);
  const first = gate.acquire(c.now() + 1000);
  const second = gate.acquire(c.now() + 1000);
  const third = gate.acquire(c.now() + 1000);
  expect(await reason(first)).toBe('overload');
  expect(gate.waiting()).toBe(2);
  holder(true);
  (await second)(true);
  expect(await reason(third)).toBe('granted');
});
