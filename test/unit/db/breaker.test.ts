import { createBreaker } from '../../../src/db/breaker';
import { createLogger } from '../../../src/logger';
import { createDbStats } from '../../../src/metrics/db-stats';
import { Writable } from 'node:stream';

const quiet = createLogger({
  level: 'error',
  base: {},
  stream: new Writable({ write: (_c, _e, cb) => cb() }),
});

function setup(probeOk: () => boolean) {
  const stats = createDbStats();
  let probes = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const breaker = createBreaker({
    logger: quiet,
    stats,
    threshold: 3,
    minFailingMs: 0,
    probeIntervalMs: 20,
    probe: async () => {
      probes += 1;
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight -= 1;
      if (!probeOk()) throw new Error('down');
    },
  });
  return { breaker, stats, probes: () => probes, maxInFlight: () => maxInFlight };
}

test('opens after consecutive failures, probes one at a time, closes on the first good probe', async () => {
  let up = false;
  const { breaker, stats, probes, maxInFlight } = setup(() => up);
  breaker.failure();
  breaker.failure();
  expect(breaker.isOpen()).toBe(false);
  breaker.failure();
  expect(breaker.isOpen()).toBe(true);
  expect(stats.breakerState).toBe('open');
  const waiting = breaker.admit(Date.now() + 2000);
  await new Promise((r) => setTimeout(r, 100));
  expect(probes()).toBeGreaterThan(1);
  up = true;
  await waiting;
  expect(breaker.isOpen()).toBe(false);
  expect(stats.breakerOpenings).toBe(1);
  expect(maxInFlight()).toBe(1);
  breaker.stop();
});

test('a request whose budget ends while the breaker is open gets a 503 with Retry-After', async () => {
  const { breaker } = setup(() => false);
  for (let i = 0; i < 3; i++) breaker.failure();
  await expect(breaker.admit(Date.now() + 50)).rejects.toMatchObject({
    status: 503,
    code: 'database_unavailable',
    headers: { 'Retry-After': expect.stringMatching(/^\d+$/) },
  });
  breaker.stop();
});

test('a success in between resets the failure count', () => {
  const { breaker } = setup(() => true);
  breaker.failure();
  breaker.failure();
  breaker.success();
  breaker.failure();
  breaker.failure();
  expect(breaker.isOpen()).toBe(false);
  breaker.stop();
});

test('a burst of failures within milliseconds (all backends killed at once) is not an outage', () => {
  const stats = createDbStats();
  let t = 1000;
  const breaker = createBreaker({
    logger: quiet,
    stats,
    threshold: 3,
    minFailingMs: 250,
    now: () => t,
    probe: async () => {},
  });
  for (let i = 0; i < 10; i++) breaker.failure();
  expect(breaker.isOpen()).toBe(false);
  t += 300;
  breaker.failure();
  expect(breaker.isOpen()).toBe(true);
  breaker.stop();
});

describe('with an injected clock', () => {
  function open(t: { now: number }, probe: () => Promise<void>) {
    const breaker = createBreaker({
      logger: quiet,
      stats: createDbStats(),
      threshold: 2,
      minFailingMs: 0,
      probeIntervalMs: 60_000,
      now: () => t.now,
      probe,
    });
    breaker.failure();
    breaker.failure();
    expect(breaker.isOpen()).toBe(true);
    return breaker;
  }

  test('the budget is read on the injected clock: none left is a 503, some left waits for the close', async () => {
    const t = { now: 5_000 };
    const breaker = open(t, () => new Promise(() => undefined));
    await expect(breaker.admit(5_000)).rejects.toMatchObject({ code: 'database_unavailable' });
    let admitted = false;
    const waiting = breaker.admit(t.now + 60_000).then(() => (admitted = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(admitted).toBe(false);
    breaker.success();
    await waiting;
    expect(admitted).toBe(true);
    breaker.stop();
  });

  test('probeNow probes again at once instead of after the probe interval', async () => {
    const t = { now: 0 };
    let probes = 0;
    let up = false;
    const breaker = open(t, async () => {
      probes += 1;
      if (!up) throw new Error('down');
    });
    // The first probe runs right away and fails; the next would be a minute later.
    await new Promise((r) => setTimeout(r, 20));
    expect(probes).toBe(1);
    up = true;
    breaker.probeNow();
    await breaker.admit(t.now + 10_000);
    expect(probes).toBe(2);
    expect(breaker.isOpen()).toBe(false);
    breaker.stop();
  });
});
