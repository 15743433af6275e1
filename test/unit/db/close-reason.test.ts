import { closeReason, type ClosedSocket, type CloseContext } from '../../../src/db/close-reason';

const T = 1_000_000;

function sock(over: Partial<ClosedSocket> = {}): ClosedSocket {
  return {
    cancel: false,
    readOnly: false,
    stalled: false,
    tls: false,
    closedByUs: false,
    peerEnded: false,
    fatal: false,
    openedAt: T - 60_000,
    lastActivity: T - 1000,
    goodbyeSized: false,
    activityBefore: T - 1000,
    ...over,
  };
}

function ctx(over: Partial<CloseContext> = {}): CloseContext {
  return {
    now: T,
    hadError: false,
    shuttingDown: false,
    idleTimeoutMinS: 10,
    maxLifetimeMinS: 50,
    ...over,
  };
}

test('what the socket layer knows for sure comes first: cancel, read-only, stalled, shutdown', () => {
  expect(closeReason(sock({ cancel: true, stalled: true }), ctx())).toBe('cancel_request');
  expect(closeReason(sock({ readOnly: true, stalled: true }), ctx())).toBe('read_only');
  expect(closeReason(sock({ stalled: true }), ctx({ shuttingDown: true }))).toBe('stalled');
  expect(closeReason(sock({ closedByUs: true }), ctx({ shuttingDown: true }))).toBe('shutdown');
});

test('plain: our own end is the idle timer past its lower bound, else the lifetime', () => {
  expect(closeReason(sock({ closedByUs: true, lastActivity: T - 9_600 }), ctx())).toBe(
    'idle_timeout',
  );
  expect(closeReason(sock({ closedByUs: true, lastActivity: T - 5_000 }), ctx())).toBe(
    'max_lifetime',
  );
  // No idle timer configured: every close of ours is the lifetime.
  expect(
    closeReason(
      sock({ closedByUs: true, lastActivity: T - 60_000 }),
      ctx({ idleTimeoutMinS: null }),
    ),
  ).toBe('max_lifetime');
});

test("plain: the peer's FIN or a FATAL is the server's close; anything else a network error", () => {
  expect(closeReason(sock({ peerEnded: true }), ctx())).toBe('server_closed');
  expect(closeReason(sock({ fatal: true }), ctx({ hadError: true }))).toBe('server_closed');
  expect(closeReason(sock(), ctx({ hadError: true }))).toBe('network_error');
  expect(closeReason(sock(), ctx())).toBe('network_error');
});

test('TLS: inferred from idleness and age, with the goodbye not counted as activity', () => {
  expect(closeReason(sock({ tls: true }), ctx({ hadError: true }))).toBe('network_error');
  // Idle 9.6 s plus the tick's slack: past 95 % of the 10 s lower bound.
  expect(closeReason(sock({ tls: true, lastActivity: T - 9_300 }), ctx())).toBe('idle_timeout');
  // The last change seen was a goodbye: idle since the activity before it.
  expect(
    closeReason(
      sock({ tls: true, lastActivity: T - 100, goodbyeSized: true, activityBefore: T - 9_800 }),
      ctx(),
    ),
  ).toBe('idle_timeout');
  expect(closeReason(sock({ tls: true, openedAt: T - 49_600, lastActivity: T - 100 }), ctx())).toBe(
    'max_lifetime',
  );
  expect(closeReason(sock({ tls: true, openedAt: T - 5_000, lastActivity: T - 100 }), ctx())).toBe(
    'server_closed',
  );
});
