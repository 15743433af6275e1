import http from 'node:http';
import type { ConnectionTracker } from '../../../src/lifecycle/connections';
import { createReadiness } from '../../../src/lifecycle/readiness';
import { createShutdown, type ShutdownDeps } from '../../../src/lifecycle/shutdown';

/** A tracker the test drives: sockets close when the test says so. */
function fakeTracker(sockets: number, inFlight: number) {
  let open = sockets;
  let busy = inFlight;
  let waiters: Array<() => void> = [];
  let destroyed = 0;
  const tracker: ConnectionTracker = {
    inFlight: () => busy,
    sockets: () => open,
    whenClosed: () =>
      open === 0 ? Promise.resolve() : new Promise<void>((r) => waiters.push(() => r())),
    destroyAll() {
      destroyed = open;
      open = 0;
      busy = 0;
    },
  };
  return {
    tracker,
    destroyed: () => destroyed,
    closeAll() {
      open = 0;
      busy = 0;
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    },
  };
}

function setup(t: ReturnType<typeof fakeTracker>, over: Partial<ShutdownDeps> = {}) {
  const steps: string[] = [];
  const exitCodes: number[] = [];
  const readiness = createReadiness();
  // Never listening: net.Server's close() on it is a no-op, and the test does no I/O.
  const server = http.createServer();
  const shutdown = createShutdown({
    server,
    tracker: t.tracker,
    readiness,
    timeoutMs: 100,
    closeDb: async (s) => void steps.push(`db ${s > 0 ? 'budget' : 'none'}`),
    flushLogs: async () => void steps.push('flush'),
    log: (msg) => steps.push(msg),
    exit: (c) => exitCodes.push(c),
    ...over,
  });
  return { shutdown, steps, exitCodes, readiness };
}

test('not ready at once; once the sockets are gone: database, logs, exit 0', async () => {
  const t = fakeTracker(2, 1);
  const { shutdown, steps, exitCodes, readiness } = setup(t);
  const done = shutdown('SIGTERM');
  expect(readiness.draining()).toBe(true);
  t.closeAll();
  await done;
  expect(steps).toEqual(['shutdown started', 'db budget', 'shutdown complete', 'flush']);
  expect(exitCodes).toEqual([0]);
  expect(t.destroyed()).toBe(0);
});

test('requests still running at the deadline are cut and the exit says so', async () => {
  const t = fakeTracker(3, 2);
  const { shutdown, steps, exitCodes } = setup(t);
  await shutdown('SIGTERM');
  expect(t.destroyed()).toBe(3);
  expect(steps).toContain('shutdown deadline reached');
  expect(exitCodes).toEqual([1]);
});

test('idle keep-alive sockets are kept until the deadline, then closed with exit 0', async () => {
  const t = fakeTracker(4, 0);
  const { shutdown, exitCodes } = setup(t);
  const done = shutdown('SIGINT');
  await new Promise((r) => setTimeout(r, 20));
  expect(t.destroyed()).toBe(0); // still open well before the 100 ms deadline
  await done;
  expect(t.destroyed()).toBe(4);
  expect(exitCodes).toEqual([0]);
});

test('idempotent: a second call joins the first and the process exits once', async () => {
  const t = fakeTracker(0, 0);
  const { shutdown, exitCodes } = setup(t);
  const a = shutdown('SIGTERM');
  const b = shutdown('SIGINT');
  expect(b).toBe(a);
  await a;
  expect(exitCodes).toEqual([0]);
});

test('a crash while draining for a signal makes the exit non-zero', async () => {
  const t = fakeTracker(1, 1);
  const { shutdown, exitCodes } = setup(t);
  const done = shutdown('SIGTERM');
  void shutdown('uncaught exception', 1);
  t.closeAll();
  await done;
  expect(exitCodes).toEqual([1]);
});

test('a failing step does not skip the next ones', async () => {
  const t = fakeTracker(0, 0);
  const { shutdown, steps, exitCodes } = setup(t, {
    closeDb: () => Promise.reject(new Error('db gone')),
  });
  await shutdown('SIGTERM');
  expect(steps).toEqual(['shutdown started', 'shutdown step failed', 'shutdown complete', 'flush']);
  expect(exitCodes).toEqual([0]);
});

test("the worker's own steps run in order after the drain, before the database, each named in the last line", async () => {
  const t = fakeTracker(1, 1);
  const metas: Array<Record<string, unknown> | undefined> = [];
  const order: string[] = [];
  const { shutdown, steps } = setup(t, {
    steps: [
      { name: 'first', run: () => void order.push(`first drained=${t.tracker.sockets() === 0}`) },
      {
        name: 'second',
        run: () => {
          order.push('second');
          throw new Error('boom');
        },
      },
      { name: 'third', run: async () => void order.push('third') },
    ],
    closeDb: async () => void order.push('db'),
    log: (msg, meta) => {
      steps.push(msg);
      metas.push(meta);
    },
  });
  const done = shutdown('SIGTERM');
  expect(order).toEqual([]);
  t.closeAll();
  await done;
  expect(order).toEqual(['first drained=true', 'second', 'third', 'db']);
  expect(steps).toContain('shutdown step failed');
  const complete = metas[steps.indexOf('shutdown complete')] as { steps: Array<{ step: string }> };
  expect(complete.steps.map((s) => s.step)).toEqual([
    'not ready',
    'stop accepting',
    'drain',
    'first',
    'second',
    'third',
    'close database',
  ]);
});
