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

test('a unit whose wait for a slot alone would pass its deadline is refused at once, before any work', async () => {
  const c = clock();
  const gate = createAdmission({ slots: 1, now: c.now });
  // One unit that held its slot 100 ms teaches the gate how long a unit takes.
  const first = await gate.acquire(c.now() + 1000);
  c.advance(100);
  first(true);
  const holder = await gate.acquire(c.now() + 1000);
  // One slot, a unit holds it ~100 ms: with 80 ms left even the next slot comes too late.
  expect(await reason(gate.acquire(c.now() + 80))).toBe('overload');
  expect(gate.waiting()).toBe(0);
  // 150 ms is enough to get the next slot: it waits.
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

test('a waiter with less than a hold left is passed over for the newest, not refused at once', async () => {
  const c = clock();
  const gate = createAdmission({ slots: 1, now: c.now });
  // A unit that held its slot 200 ms and ended in an answer teaches the gate.
  const slow = await gate.acquire(c.now() + 1000);
  c.advance(200);
  slow(true);
  const holder = await gate.acquire(c.now() + 1000);
  const old = gate.acquire(c.now() + 250);
  c.advance(100);
  const fresh = gate.acquire(c.now() + 1000);
  // The old one has waited 100 of its 250 ms (not yet half), but 150 ms left is less than the
  // ~190 ms a unit holds its slot here: the slot goes to the newcomer.
  holder(true);
  expect(await reason(fresh)).toBe('granted');
  expect(gate.waiting()).toBe(1);
  // The old one was not answered at once: it leaves at its own deadline, never started.
  expect(await reason(old)).toBe('deadline');
  expect(gate.waiting()).toBe(0);
});

test('a full wait refuses its oldest waiter, never the newcomer', async () => {
  const c = clock();
  const gate = createAdmission({ slots: 1, maxWaiting: 2, now: c.now });
  const holder = await gate.acquire(c.now() + 1000);
  const first = gate.acquire(c.now() + 1000);
  const second = gate.acquire(c.now() + 1000);
  const third = gate.acquire(c.now() + 1000);
  expect(await reason(first)).toBe('full');
  expect(gate.waiting()).toBe(2);
  holder(true);
  (await second)(true);
  expect(await reason(third)).toBe('granted');
});
