/**
 * The deadline middleware through `app.callback()`: the request's signal fires at the deadline
 * (reason DEADLINE) or when the client leaves (any other reason), and a handler that ignores it
 * is answered 503 once the settle time is over. Limits are scaled down to tens of milliseconds.
 */
import Koa from 'koa';
import { DEADLINE } from '../../../../src/db/runner';
import type { KeelState } from '../../../../src/http/context';
import { deadline, type DeadlineDeps } from '../../../../src/http/middleware/deadline';
import { errorHandler } from '../../../../src/http/middleware/errors';
import { capturedLogger, serve, type Served } from '../serve';

type Handler = Koa.Middleware<KeelState>;

const opened: Served[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

async function app(deps: DeadlineDeps, handler: Handler): Promise<string> {
  const koa = new Koa<KeelState>();
  koa.silent = true;
  koa.use(errorHandler({ logger: capturedLogger().logger }));
  koa.use(deadline(deps));
  koa.use(handler);
  const served = await serve(koa.callback());
  opened.push(served);
  return served.base;
}

/** Resolves with the abort reason once the request's signal fires. */
function aborted(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) =>
    signal.addEventListener('abort', () => resolve(signal.reason), { once: true }),
  );
}

test('a handler that ignores the deadline is answered 503 after the settle time', async () => {
  let reason: Promise<unknown> = Promise.resolve(null);
  const base = await app({ timeoutMs: 30, settleMs: 30 }, (ctx) => {
    reason = aborted(ctx.state.work.signal!);
    return new Promise(() => undefined); // never settles
  });
  const res = await fetch(`${base}/`);
  expect(res.status).toBe(503);
  expect(res.headers.get('retry-after')).toBe('1');
  expect(await res.json()).toEqual({
    error: { code: 'database_unavailable', message: 'the request did not complete in time' },
  });
  expect(await reason).toBe(DEADLINE);
});

test('a handler that stops at the signal answers itself, without waiting out the settle time', async () => {
  const base = await app({ timeoutMs: 30, settleMs: 60_000 }, async (ctx) => {
    const why = await aborted(ctx.state.work.signal!);
    ctx.body = { stopped: why === DEADLINE };
  });
  const res = await fetch(`${base}/`);
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ stopped: true });
});

test('the work deadline is now() + timeoutMs, from the injected clock', async () => {
  const base = await app({ timeoutMs: 2500, now: () => 1_000 }, (ctx) => {
    ctx.body = { deadline: ctx.state.work.deadline };
  });
  expect(await (await fetch(`${base}/`)).json()).toEqual({ deadline: 3_500 });
});

test('a client that leaves aborts the signal with a reason that is not the deadline', async () => {
  let started!: () => void;
  const inHandler = new Promise<void>((r) => (started = r));
  let reason: Promise<unknown> = Promise.resolve(null);
  const base = await app({ timeoutMs: 60_000 }, (ctx) => {
    reason = aborted(ctx.state.work.signal!);
    started();
    return reason.then(() => undefined);
  });
  const client = new AbortController();
  const request = fetch(`${base}/`, { signal: client.signal }).catch((e: unknown) => e);
  await inHandler;
  client.abort();
  await request;
  const why = await reason;
  expect(why).not.toBe(DEADLINE);
  expect(why).toMatchObject({ name: 'AbortError' });
});

test('the clock stops while the body is received and starts afresh once it has arrived', async () => {
  let clock = 1_000;
  const base = await app({ timeoutMs: 40, settleMs: 20, now: () => clock }, async (ctx) => {
    // The upload takes three deadlines' worth: no abort, no 503.
    const body = await ctx.state.receive(async () => {
      await new Promise((r) => setTimeout(r, 120));
      clock = 5_000;
      return 'read';
    });
    ctx.body = {
      body,
      aborted: ctx.state.work.signal!.aborted,
      deadline: ctx.state.work.deadline,
    };
  });
  const res = await fetch(`${base}/`);
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ body: 'read', aborted: false, deadline: 5_040 });
});

test('after the body has arrived, work that ignores the deadline is still answered 503', async () => {
  const base = await app({ timeoutMs: 30, settleMs: 30 }, async (ctx) => {
    await ctx.state.receive(async () => 'read');
    return new Promise(() => undefined);
  });
  expect((await fetch(`${base}/`)).status).toBe(503);
});
