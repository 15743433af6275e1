/**
 * The read set (src/db/reads/read-set.ts) with scripted positions and an injected clock: a
 * standby is eligible only once it has replayed a primary sample, stays eligible while that
 * sample is within the lag bound, leaves when the bound passes with the primary moving on, when
 * it fails or is promoted, and is asked again after a doubling delay, not at every check.
 */
import { createLogger } from '../../../src/logger';
import type { PositionReader, ServerPosition } from '../../../src/db/reads/position';
import { createReadSet, newStandby, type Standby } from '../../../src/db/reads/read-set';
import type { Db } from '../../../src/db/runner';
import type { SqlHandle } from '../../../src/db/sql';
import { createDbStats } from '../../../src/metrics/db-stats';
import { until } from '../../support/wait';

const logger = createLogger({ level: 'error', base: {} });

/** A server whose answer the test sets; counts the questions. */
function scripted(initial: ServerPosition | Error) {
  let answer = initial;
  let asked = 0;
  const reader: PositionReader = {
    after: () => {
      asked += 1;
      return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
    },
  };
  return {
    reader,
    set: (a: ServerPosition | Error) => (answer = a),
    asked: () => asked,
  };
}

function standby(position: PositionReader): Standby {
  return newStandby({
    address: 'standby:5432',
    handle: {} as SqlHandle,
    db: {} as Db,
    stats: createDbStats(),
    position,
  });
}

function setup() {
  let clock = 1_000_000;
  const primary = scripted({ recovery: false, lsn: 100n });
  const server = scripted({ recovery: true, lsn: 100n });
  const s = standby(server.reader);
  const set = createReadSet({
    standbys: [s],
    primary: primary.reader,
    maxLagMs: 1000,
    checkMs: 5,
    logger,
    now: () => clock,
    random: () => 1,
  });
  return { set, s, primary, server, advance: (ms: number) => (clock += ms) };
}

test('eligible once it has replayed a primary sample; out when that sample is older than the bound', async () => {
  const { set, s, primary, server, advance } = setup();
  expect(set.eligible()).toEqual([]);
  set.start();
  try {
    await until('the standby checked', () => set.eligible().length === 1);
    expect(set.staleness(s)).toBe(0);
    // The primary moves on, the standby does not: its bound grows with the clock.
    primary.set({ recovery: false, lsn: 200n });
    const asked = server.asked();
    await until('a check after the primary moved', () => server.asked() > asked + 1);
    advance(999);
    expect(set.eligible()).toEqual([s]);
    advance(2);
    expect(set.eligible()).toEqual([]);
    expect(set.staleness(s)).toBeGreaterThan(1);
    // It catches up: eligible again from the next check.
    server.set({ recovery: true, lsn: 200n });
    await until('back in the set', () => set.eligible().length === 1);
  } finally {
    set.stop();
  }
});

test('a failing standby leaves the set and is asked again after a doubling delay', async () => {
  const { set, s, primary, server, advance } = setup();
  set.start();
  try {
    await until('the standby checked', () => set.eligible().length === 1);
    server.set(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }));
    await until('out of the set', () => set.eligible().length === 0);
    expect(s.failures).toBe(1);
    const asked = server.asked();
    // checkMs 5 doubled: not asked again until the clock passes 10 ms, however many checks run.
    const ticks = primary.asked();
    await until('more checks ran', () => primary.asked() > ticks + 3);
    expect(server.asked()).toBe(asked);
    advance(10);
    await until('asked again', () => server.asked() > asked);
    expect(s.failures).toBe(2);
    advance(20);
    server.set({ recovery: true, lsn: 100n });
    await until('back in the set', () => set.eligible().length === 1);
    expect(s.failures).toBe(0);
  } finally {
    set.stop();
  }
});

test('a promoted standby leaves the set; a read that fails takes it out at once', async () => {
  const { set, s, server } = setup();
  set.start();
  try {
    await until('the standby checked', () => set.eligible().length === 1);
    set.failed(s, 'ECONNRESET');
    expect(set.eligible()).toEqual([]);
    expect(s.replayed).toBeNull();
    set.replayed(s, { recovery: true, lsn: 100n });
    expect(set.eligible()).toEqual([s]);
    server.set({ recovery: false, lsn: 300n });
    set.replayed(s, { recovery: false, lsn: 300n });
    expect(set.eligible()).toEqual([]);
    expect(s.promoted).toBe(true);
  } finally {
    set.stop();
  }
});
