import { Writable } from 'node:stream';
import { createPathWatch } from '../../../src/db/path-watch';
import type { Probe, ProbeOutcome } from '../../../src/db/ssl-probe';
import { createLogger } from '../../../src/logger';

const quiet = createLogger({
  level: 'error',
  base: {},
  stream: new Writable({ write: (_c, _e, cb) => cb() }),
});

interface ManualProbe {
  connected: boolean;
  resends: number;
  abandoned: boolean;
  settle(outcome: ProbeOutcome): Promise<void>;
}

/** Probes whose answers the test decides; `open` lists every one the watch opened. */
function manualProbes() {
  const open: ManualProbe[] = [];
  let refuseSlot = false;
  const factory = (): Probe | null => {
    if (refuseSlot) return null;
    let resolve!: (o: ProbeOutcome) => void;
    const answered = new Promise<ProbeOutcome>((r) => (resolve = r));
    const rec: ManualProbe = {
      connected: true,
      resends: 0,
      abandoned: false,
      async settle(outcome) {
        resolve(outcome);
        await flush();
      },
    };
    open.push(rec);
    return {
      answered,
      connected: () => rec.connected,
      resend: () => {
        rec.resends += 1;
      },
      abandon: () => {
        rec.abandoned = true;
        resolve('abandoned');
      },
    };
  };
  return { factory, open, refuseSlots: (on: boolean) => (refuseSlot = on) };
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

/** Moves the fake clock and runs the timers and immediates due, with promise turns between. */
async function advance(ms: number): Promise<void> {
  await jest.advanceTimersByTimeAsync(ms);
  await flush();
}

function setup() {
  const p = manualProbes();
  const stalls: number[] = [];
  const heals: number[] = [];
  const watch = createPathWatch({
    probe: p.factory,
    onStall: () => stalls.push(Date.now()),
    onHeal: (since) => heals.push(since),
    logger: quiet,
    suspectMs: 500,
    probeTimeoutMs: 1000,
  });
  return { watch, p, stalls, heals };
}

beforeEach(() => {
  jest.useFakeTimers({ now: 1_000_000 });
});

afterEach(() => {
  jest.useRealTimers();
});

test('short silences are not probed; a probe that is answered leaves a slow query alone', async () => {
  const { watch, p, stalls, heals } = setup();
  watch.tick(100);
  expect(p.open).toHaveLength(0);
  watch.tick(600);
  expect(p.open).toHaveLength(1);
  // One probe at a time: more silence opens no second one while it waits.
  watch.tick(700);
  expect(p.open).toHaveLength(1);
  await p.open[0]!.settle('answered');
  await advance(2000);
  expect(watch.stalledSince()).toBeNull();
  expect(stalls).toEqual([]);
  expect(heals).toEqual([]);
  watch.stop();
});

test('a stall costs one probe connection however long it lasts, and its answer heals the path', async () => {
  const { watch, p, stalls, heals } = setup();
  watch.tick(600);
  const opened = Date.now();
  await advance(1010);
  expect(watch.stalledSince()).toBe(opened);
  expect(stalls).toHaveLength(1);
  // 20 s of stall: the same probe waits in it, resending its request; no new connection.
  for (let i = 0; i < 80; i++) {
    watch.tick(Date.now() - opened);
    await advance(250);
  }
  expect(p.open).toHaveLength(1);
  expect(p.open[0]!.resends).toBeGreaterThan(10);
  await p.open[0]!.settle('answered');
  expect(watch.stalledSince()).toBeNull();
  expect(heals).toEqual([opened]);
  expect(watch.healedAt()).toBe(Date.now());
  expect(watch.answeredSince(opened)).toBe(true);
  watch.stop();
});

test('a probe that never connects is replaced, one at a time, at growing intervals', async () => {
  const { watch, p } = setup();
  watch.tick(600);
  p.open[0]!.connected = false;
  await advance(1010);
  expect(watch.stalledSince()).not.toBeNull();
  const openedAt: number[] = [];
  let seen = 1;
  for (let i = 0; i < 200; i++) {
    await advance(250);
    if (p.open.length > seen) {
      seen = p.open.length;
      openedAt.push(Date.now());
      p.open[seen - 1]!.connected = false;
    }
    // Never two at once: every probe but the newest was abandoned.
    expect(p.open.slice(0, -1).every((x) => x.abandoned)).toBe(true);
  }
  // 50 s of stall: 2 s, then 4, 8, 16, 16 s between fresh connections.
  expect(p.open.length).toBeLessThanOrEqual(6);
  const gaps = openedAt.slice(1).map((t, i) => t - openedAt[i]!);
  for (let i = 1; i < gaps.length; i++) expect(gaps[i]!).toBeGreaterThanOrEqual(gaps[i - 1]!);
  watch.stop();
});

test('a timer that fired late because the loop was busy does not declare a stall', async () => {
  const { watch, p, stalls } = setup();
  watch.tick(600);
  // The event loop was blocked for 3 s: the clock jumps before the timer gets to run.
  jest.setSystemTime(Date.now() + 3000);
  await advance(1000);
  // The verdict waits out the lag; the answer that arrived meanwhile is read first.
  await p.open[0]!.settle('answered');
  await advance(5000);
  expect(stalls).toEqual([]);
  expect(watch.stalledSince()).toBeNull();
  watch.stop();
});

test("a pool connection's bytes heal the path and end the waiting probe", async () => {
  const { watch, p, heals } = setup();
  watch.tick(600);
  await advance(1010);
  const since = watch.stalledSince();
  expect(since).not.toBeNull();
  watch.heard();
  expect(watch.stalledSince()).toBeNull();
  expect(heals).toEqual([since]);
  expect(p.open[0]!.abandoned).toBe(true);
  // Probing starts afresh on the next suspicion.
  watch.tick(600);
  expect(p.open).toHaveLength(2);
  watch.stop();
});

test('a refused probe means the path answers (the breaker handles that outage)', async () => {
  const { watch, p, stalls } = setup();
  watch.tick(600);
  await p.open[0]!.settle('refused');
  await advance(2000);
  expect(stalls).toEqual([]);
  watch.stop();
});

test('no free connection slot: no probe now, one on a later tick', async () => {
  const { watch, p } = setup();
  p.refuseSlots(true);
  watch.tick(600);
  expect(p.open).toHaveLength(0);
  p.refuseSlots(false);
  watch.tick(700);
  expect(p.open).toHaveLength(1);
  watch.stop();
});
