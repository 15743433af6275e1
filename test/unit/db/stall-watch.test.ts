import {
  HEAL_GRACE_MS,
  shouldDestroy,
  STARTUP_STALL_MS,
  type PathView,
} from '../../../src/db/stall-watch';

const T = 1_000_000;
const STALL_MS = 3000;

function path(
  over: Partial<{ stalledSince: number | null; healedAt: number; answeredAfter: number }> = {},
): PathView {
  const answeredAfter = over.answeredAfter ?? -Infinity;
  return {
    stalledSince: () => over.stalledSince ?? null,
    healedAt: () => over.healedAt ?? -Infinity,
    answeredSince: (t) => answeredAfter >= t,
  };
}

const silentFor = (ms: number, answered = true) => ({
  answered,
  awaitingSince: T - ms,
  lastRead: T - ms - 10,
});

test('nothing awaited, or silent within its limit: kept', () => {
  expect(
    shouldDestroy(
      { answered: true, awaitingSince: null, lastRead: 0 },
      path({ answeredAfter: T }),
      T,
      STALL_MS,
    ),
  ).toBe(false);
  expect(shouldDestroy(silentFor(STALL_MS - 1), path({ answeredAfter: T }), T, STALL_MS)).toBe(
    false,
  );
  expect(
    shouldDestroy(silentFor(STARTUP_STALL_MS - 1, false), path({ answeredAfter: T }), T, STALL_MS),
  ).toBe(false);
});

test('silent past its limit: destroyed only once a probe opened after the silence was answered', () => {
  const c = silentFor(STALL_MS + 1);
  expect(shouldDestroy(c, path(), T, STALL_MS)).toBe(false);
  expect(shouldDestroy(c, path({ answeredAfter: T - STALL_MS - 2 }), T, STALL_MS)).toBe(false);
  expect(shouldDestroy(c, path({ answeredAfter: T - 5 }), T, STALL_MS)).toBe(true);
  // A startup that got no answer for a second, on a path that answers probes.
  expect(
    shouldDestroy(silentFor(STARTUP_STALL_MS + 1, false), path({ answeredAfter: T }), T, STALL_MS),
  ).toBe(true);
});

test('while the path is known stalled nothing is destroyed, however long the silence', () => {
  const c = silentFor(60000, false);
  expect(
    shouldDestroy(c, path({ stalledSince: T - 59000, answeredAfter: T - 59500 }), T, STALL_MS),
  ).toBe(false);
});

test('silent since before the heal and past its limit: destroyed once the grace after the heal has passed', () => {
  // Its bytes went into the stall: held ones are answered at the heal, lost ones never are (and
  // postgres.js queues new queries behind them).
  const c = silentFor(10000);
  expect(
    shouldDestroy(c, path({ healedAt: T - HEAL_GRACE_MS, answeredAfter: T }), T, STALL_MS),
  ).toBe(false);
  expect(
    shouldDestroy(c, path({ healedAt: T - HEAL_GRACE_MS - 1, answeredAfter: T }), T, STALL_MS),
  ).toBe(true);
  // Not yet past its own limit (a query that went out just before a short stall): its limit
  // still counts from when it went silent.
  const young = silentFor(STALL_MS - 1);
  expect(shouldDestroy(young, path({ healedAt: T - 2000, answeredAfter: T }), T, STALL_MS)).toBe(
    false,
  );
  // A startup that went into the stall: a second after the heal.
  const s = silentFor(10000, false);
  expect(
    shouldDestroy(s, path({ healedAt: T - STARTUP_STALL_MS, answeredAfter: T }), T, STALL_MS),
  ).toBe(false);
  expect(
    shouldDestroy(s, path({ healedAt: T - STARTUP_STALL_MS - 1, answeredAfter: T }), T, STALL_MS),
  ).toBe(true);
});
