import { Writable } from 'node:stream';
import { createPathWatch } from '../../../src/db/path-watch';
import { createLogger } from '../../../src/logger';

const quiet = createLogger({
  level: 'error',
  base: {},
  stream: new Writable({ write: (_c, _e, cb) => cb() }),
});

/** A probe whose answer the test decides: each call waits for `settle`. */
function manualProbe() {
  const pending: Array<(ok: boolean) => void> = [];
  return {
    probe: () => new Promise<boolean>((resolve) => pending.push(resolve)),
    settle: async (ok: boolean) => {
      pending.shift()!(ok);
      await new Promise((r) => setImmediate(r));
    },
    settleNewest: async (ok: boolean) => {
      pending.pop()!(ok);
      await new Promise((r) => setImmediate(r));
    },
    count: () => pending.length,
  };
}

function setup() {
  let t = 1_000_000;
  const heals: number[] = [];
  const p = manualProbe();
  const watch = createPathWatch({
    probe: p.probe,
    onHeal: (since) => heals.push(since),
    logger: quiet,
    suspectMs: 250,
    probeEveryMs: 1000000, // the loop's own timer never fires in these tests
    probeTimeoutMs: 500,
    now: () => t,
  });
  return { watch, p, heals, advance: (ms: number) => (t += ms), now: () => t };
}

test('short silences are not probed; a probe that is answered leaves a slow query alone', async () => {
  const { watch, p, heals } = setup();
  watch.tick(100);
  expect(p.count()).toBe(0);
  watch.tick(300);
  expect(p.count()).toBe(1);
  await p.settle(true);
  expect(watch.stalledSince()).toBeNull();
  expect(heals).toEqual([]);
  watch.stop();
});

test('an unanswered probe marks the path stalled; the first answer after that heals it', async () => {
  const { watch, p, heals, advance, now } = setup();
  watch.tick(300);
  const sent = now();
  advance(500);
  await p.settle(false);
  expect(watch.stalledSince()).toBe(sent);
  expect(watch.reconnectNow()).toBe(true);
  // While stalled every tick keeps probing (here the loop's first probe).
  watch.tick(0);
  expect(p.count()).toBe(1);
  advance(10);
  await p.settle(true);
  expect(watch.stalledSince()).toBeNull();
  expect(heals).toEqual([sent]);
  // Just healed: reconnect without backoff for a moment, then back to normal.
  expect(watch.reconnectNow()).toBe(true);
  advance(2000);
  expect(watch.reconnectNow()).toBe(false);
  watch.stop();
});

test('probes sent before an answered one cannot mark a healed path stalled again', async () => {
  const p = manualProbe();
  const heals: number[] = [];
  const watch = createPathWatch({
    probe: p.probe,
    onHeal: (since) => heals.push(since),
    logger: quiet,
    suspectMs: 0,
    probeEveryMs: 5,
    probeTimeoutMs: 500,
  });
  watch.tick(1);
  await new Promise((r) => setTimeout(r, 2));
  await p.settle(false);
  // Stalled: a probe every 5 ms; let several pile up, unanswered.
  watch.tick(0);
  await new Promise((r) => setTimeout(r, 40));
  expect(p.count()).toBeGreaterThan(2);
  await p.settleNewest(true);
  expect(heals).toHaveLength(1);
  // The older ones time out now: the path answered after they were sent.
  while (p.count() > 0) await p.settle(false);
  expect(watch.stalledSince()).toBeNull();
  watch.stop();
});
