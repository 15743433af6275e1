/**
 * Log volume: one line per request; a flood of 4xx writes no stack traces, a 500 writes exactly
 * one (with its request id), through real HTTP against real Postgres.
 */
import { psql } from '../support/postgres';
import { rawConnect } from '../support/raw-http';
import { waitFor } from '../support/wait';
import { call, useWorker } from '../support/worker';

const ctx = useWorker({ BODY_LIMIT: '1kb', LOG_LEVEL: 'info' });

const stackLines = () => ctx.w.rawLogs.filter((l) => /"stack"|\\n\s+at /.test(l));

/** Waits until `n` request lines more than `before` were written (the batch flushes at 50 ms). */
const requestLines = (before: number, n: number) =>
  waitFor(() => ctx.w.logs.filter((l) => l.msg === 'request').length >= before + n);

test('200 requests answered 4xx: one line each, no stack', async () => {
  const a = (await call(ctx.w.base, 'POST', '/api/accounts', { name: 'a', balance: 5 })).body.id;
  const b = (await call(ctx.w.base, 'POST', '/api/accounts', { name: 'b' })).body.id;
  await call(
    ctx.w.base,
    'POST',
    '/api/transfers',
    { from: a, to: b, amount: 1 },
    {
      'Idempotency-Key': 'k',
    },
  );
  ctx.w.logs.length = 0;
  ctx.w.rawLogs.length = 0;
  const bad: Array<() => Promise<number>> = [
    async () => (await call(ctx.w.base, 'POST', '/api/accounts', '{"name":')).status,
    async () => (await call(ctx.w.base, 'POST', '/api/accounts', '{"name":"\\u0000"}')).status,
    async () => (await call(ctx.w.base, 'GET', '/api/accounts/999999')).status,
    async () => (await call(ctx.w.base, 'DELETE', '/api/accounts')).status,
    async () =>
      (await call(ctx.w.base, 'POST', '/api/accounts', { name: 'x'.repeat(2000) })).status,
    async () =>
      (
        await fetch(`${ctx.w.base}/api/accounts`, {
          method: 'POST',
          body: 'x',
          headers: { 'content-type': 'text/plain' },
        })
      ).status,
    async () =>
      (await call(ctx.w.base, 'POST', '/api/transfers', { from: a, to: b, amount: 99 })).status,
    async () =>
      (
        await call(
          ctx.w.base,
          'POST',
          '/api/transfers',
          { from: a, to: b, amount: 2 },
          { 'Idempotency-Key': 'k' },
        )
      ).status,
  ];
  const statuses = new Set<number>();
  for (let i = 0; i < 200; i++) statuses.add(await bad[i % bad.length]!());
  expect([...statuses].sort()).toEqual([400, 404, 405, 409, 413, 415, 422]);
  await requestLines(0, 200);
  expect(stackLines()).toEqual([]);
  expect(ctx.w.logs.filter((l) => l.msg === 'request')).toHaveLength(200);
  // Nothing but the request lines (no error line per 4xx).
  expect(ctx.w.logs.filter((l) => l.msg !== 'request')).toEqual([]);
});

test('a 500 logs one stack, with its request id', async () => {
  ctx.w.logs.length = 0;
  ctx.w.rawLogs.length = 0;
  // A real unexpected failure: the table is gone (42P01 is neither transient nor a refusal).
  await psql(ctx.url, 'alter table accounts rename to accounts_away');
  try {
    const c = await rawConnect(ctx.w.worker.port);
    c.write('GET /api/accounts/1 HTTP/1.1\r\nHost: x\r\nX-Request-Id: boom-1\r\n\r\n');
    const r = await c.next();
    c.destroy();
    expect(r?.status).toBe(500);
    expect(JSON.parse(r!.body)).toEqual({ error: { code: 'internal', message: 'internal error' } });
  } finally {
    await psql(ctx.url, 'alter table accounts_away rename to accounts');
  }
  await requestLines(0, 1);
  const stacks = ctx.w.logs.filter((l) => typeof l.stack === 'string');
  expect(stacks).toHaveLength(1);
  expect(stacks[0]).toMatchObject({ reqId: 'boom-1', msg: 'request failed' });
});
