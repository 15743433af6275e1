/** Ledger behaviour under concurrency: no deadlocks reach clients, keys apply exactly once. */
import { psql } from '../support/postgres';
import { checkInvariants, runLoad, seedAccounts } from '../support/ledger';
import { call, useWorker } from '../support/worker';

const ctx = useWorker({ DB_POOL_MAX: '10' });

test('concurrent opposite transfers between two accounts: no deadlock, all 201', async () => {
  const [a, b] = await seedAccounts(ctx.w.base, 2, 100000);
  const jobs = Array.from({ length: 200 }, (_, i) =>
    call(
      ctx.w.base,
      'POST',
      '/api/transfers',
      i % 2 ? { from: a, to: b, amount: 3 } : { from: b, to: a, amount: 2 },
    ),
  );
  const results = await Promise.all(jobs);
  expect(results.map((r) => r.status).filter((s) => s !== 201)).toEqual([]);
  expect((await call(ctx.w.base, 'GET', `/api/accounts/${a}`)).body.balance).toBe(
    100000 - 300 + 200,
  );
  expect(ctx.w.logs.filter((l) => l.code === '40P01')).toEqual([]);
  await checkInvariants(ctx.url);
});

test('the same key sent 30 times at once applies exactly once', async () => {
  const [a, b] = await seedAccounts(ctx.w.base, 2, 1000);
  const key = { 'Idempotency-Key': `race-${a}` };
  const results = await Promise.all(
    Array.from({ length: 30 }, () =>
      call(ctx.w.base, 'POST', '/api/transfers', { from: a, to: b, amount: 7 }, key),
    ),
  );
  expect(new Set(results.map((r) => r.status))).toEqual(new Set([201]));
  expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
  expect(results.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(29);
  const rows = await psql<{ n: number }>(
    ctx.url,
    `select count(*)::int as n from transfers where from_id = ${a}`,
  );
  expect(rows[0]!.n).toBe(1);
  expect((await call(ctx.w.base, 'GET', `/api/accounts/${a}`)).body.balance).toBe(993);
});

test('draining an account concurrently never goes negative', async () => {
  const [a, b, c] = await seedAccounts(ctx.w.base, 3, 50);
  const results = await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      call(ctx.w.base, 'POST', '/api/transfers', { from: a, to: i % 2 ? b : c, amount: 3 }),
    ),
  );
  const ok = results.filter((r) => r.status === 201).length;
  expect(ok).toBe(16);
  expect(results.filter((r) => r.status === 409)).toHaveLength(24);
  expect((await call(ctx.w.base, 'GET', `/api/accounts/${a}`)).body.balance).toBe(2);
  await checkInvariants(ctx.url);
});

test('mixed load: invariants hold and every 2xx transfer exists once', async () => {
  const ids = await seedAccounts(ctx.w.base, 10, 1000);
  const load = await runLoad({
    base: ctx.w.base,
    accounts: ids,
    durationMs: 2000,
    concurrency: 16,
  });
  expect(load.errors).toEqual([]);
  expect(Object.keys(load.byStatus).every((s) => s === '200' || s === '201' || s === '409')).toBe(
    true,
  );
  await checkInvariants(ctx.url, load);
});

test('the balance CHECK constraint stops a negative balance even outside the API', async () => {
  const [a] = await seedAccounts(ctx.w.base, 1, 5);
  await expect(
    psql(ctx.url, `update accounts set balance = -1 where id = ${a}`),
  ).rejects.toMatchObject({ code: '23514' });
});
