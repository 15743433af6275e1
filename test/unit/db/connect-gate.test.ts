import { createConnectGate, GateClosedError, type Slot } from '../../../src/db/connect-gate';

beforeEach(() => {
  jest.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  jest.useRealTimers();
});

/** Starts `n` acquires; `got` lists the slots granted so far, in order. */
function asking(gate: ReturnType<typeof createConnectGate>, n: number) {
  const got: Slot[] = [];
  for (let i = 0; i < n; i++)
    gate.acquire().then(
      (s) => got.push(s),
      () => undefined, // still waiting when the test closes the gate
    );
  return got;
}

test('never more sockets than the limit, counted until each has closed', async () => {
  const gate = createConnectGate({ limit: 3 });
  const got = asking(gate, 5);
  await jest.advanceTimersByTimeAsync(0);
  expect(got).toHaveLength(3);
  expect(gate.inUse()).toBe(3);
  // A spare slot for a probe or cancel only when one is free.
  expect(gate.tryAcquire()).toBeNull();
  got[0]!.settle('opened');
  await jest.advanceTimersByTimeAsync(0);
  expect(got).toHaveLength(3); // settled is not closed: still counted
  got[0]!.release();
  await jest.advanceTimersByTimeAsync(0);
  expect(got).toHaveLength(4);
  expect(gate.inUse()).toBe(3);
  gate.close();
});

test('after failed attempts the next one waits a jittered backoff that doubles up to its cap', async () => {
  const gate = createConnectGate({ limit: 10, baseMs: 50, capMs: 500, random: () => 1 });
  const waits: number[] = [];
  for (let i = 0; i < 7; i++) {
    const asked = Date.now();
    let slot: Slot | null = null;
    void gate.acquire().then((s) => (slot = s));
    await jest.advanceTimersByTimeAsync(0);
    for (let step = 0; step < 100 && !slot; step++) await jest.advanceTimersByTimeAsync(10);
    waits.push(Date.now() - asked);
    slot!.settle('refused');
    slot!.release();
  }
  // The first attempt goes at once; then 50, 100, 200, 400 ms, then the cap (10 ms steps).
  expect(waits).toEqual([0, 50, 100, 200, 400, 500, 500]);
  gate.close();
});

test('a success resets the backoff; silent and too-many-clients attempts count as failures', async () => {
  const outcomes: string[] = [];
  const gate = createConnectGate({
    limit: 10,
    random: () => 1,
    onAttempt: (o) => outcomes.push(o),
  });
  const a = await gate.acquire();
  a.release(); // closed before any answer: silent
  await jest.advanceTimersByTimeAsync(50);
  const b = await gate.acquire();
  b.settle('too_many_clients');
  b.release();
  await jest.advanceTimersByTimeAsync(100);
  const c = await gate.acquire();
  c.settle('opened');
  const asked = Date.now();
  const d = await gate.acquire();
  expect(Date.now()).toBe(asked);
  expect(outcomes).toEqual(['silent', 'too_many_clients', 'opened']);
  d.release();
  gate.close();
});

test('while held no pool connection starts; probes and cancels are not queued at all', async () => {
  const gate = createConnectGate({ limit: 3 });
  gate.hold(true);
  const got = asking(gate, 2);
  await jest.advanceTimersByTimeAsync(60000);
  expect(got).toHaveLength(0);
  const probe = gate.tryAcquire();
  expect(probe).not.toBeNull();
  gate.hold(false);
  await jest.advanceTimersByTimeAsync(0);
  expect(got).toHaveLength(2);
  // Its outcome is not an attempt's: it never moves the backoff.
  probe!.release();
  expect(gate.connecting()).toBe(2);
  gate.close();
});

test('closing rejects the waiting and later acquires', async () => {
  const gate = createConnectGate({ limit: 1 });
  const first = await gate.acquire();
  const waiting = gate.acquire();
  gate.close();
  await expect(waiting).rejects.toBeInstanceOf(GateClosedError);
  await expect(gate.acquire()).rejects.toBeInstanceOf(GateClosedError);
  first.release();
});
