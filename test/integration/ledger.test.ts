/**
 * Ledger behaviour under concurrency: no deadlocks reach clients, keys apply exactly once. A
 * refused transfer's answer, fresh and replayed, byte for byte: the body the error catalogue
 * writes is the one keel_transfer_v2 stores, and a key answered by an older release's
 * keel_transfer (0003, which wrote its bodies in SQL; dropped in 0005) still replays exactly what
 * it answered. A transfer's JSON has one serializer (keel_transfer_json, 0005): the 201, its
 * replay and the reads answer the same bytes.
 */
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

async function openAccount(balance: number): Promise<number> {
  const r = await call(ctx.w.base, 'POST', '/api/accounts', { name: 'acct', balance });
  expect(r.status).toBe(201);
  return r.body.id as number;
}

async function transfer(body: object, key: string) {
  const res = await fetch(`${ctx.w.base}/api/transfers`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'Idempotency-Key': key },
    body: JSON.stringify(body),
  });
  return {
    status: res.status,
    text: await res.text(),
    replayed: res.headers.get('idempotent-replayed'),
    type: res.headers.get('content-type'),
  };
}

test('every refusal answers the contract body, and its replay the same bytes', async () => {
  const poor = await openAccount(5);
  const full = await openAccount(9007199254740991);
  const cases: Array<[object, number, string]> = [
    [
      { from: 999_999, to: poor, amount: 1 },
      404,
      '{"error":{"code":"not_found","message":"account 999999 not found"}}',
    ],
    [
      { from: poor, to: 999_998, amount: 1 },
      404,
      '{"error":{"code":"not_found","message":"account 999998 not found"}}',
    ],
    [
      { from: poor, to: full, amount: 6 },
      409,
      `{"error":{"code":"insufficient_funds","message":"account ${poor} has insufficient funds"}}`,
    ],
    [
      { from: poor, to: full, amount: 1 },
      400,
      `{"error":{"code":"invalid_request","message":"account ${full} cannot hold more than 9007199254740991"}}`,
    ],
  ];
  for (const [i, [body, status, text]] of cases.entries()) {
    const key = `refusal-${poor}-${i}`;
    const first = await transfer(body, key);
    expect(first).toEqual({
      status,
      text,
      replayed: null,
      type: 'application/json; charset=utf-8',
    });
    const again = await transfer(body, key);
    expect(again).toEqual({ status, text, replayed: 'true', type: first.type });
    const [row] = await psql<{ status: number; body: string }>(
      ctx.url,
      `select status, body from idempotency_keys where key = 'client:${key}'`,
    );
    expect(row).toEqual({ status, body: text });
  }
  // Nothing moved.
  expect((await call(ctx.w.base, 'GET', `/api/accounts/${poor}`)).body.balance).toBe(5);
});

test("a key answered by an older release's keel_transfer replays what it answered", async () => {
  const poor = await openAccount(5);
  const to = await openAccount(0);
  const key = `legacy-${poor}`;
  const hash = await psql<{ h: string }>(
    ctx.url,
    `select encode(sha256(convert_to('${JSON.stringify([poor, to, 6])}', 'UTF8')), 'hex') as h`,
  );
  // The row keel_transfer (0003) stored for this refusal, its body built as 0003 built it.
  await psql(
    ctx.url,
    `insert into idempotency_keys (key, request_hash, status, body, owner)
     values ('client:${key}', '${hash[0]!.h}', 409,
       json_build_object('error', json_build_object('code', 'insufficient_funds',
         'message', format('account %s has insufficient funds', ${poor})))::text,
       '00000000-0000-4000-8000-000000000001')`,
  );
  const r = await transfer({ from: poor, to, amount: 6 }, key);
  expect(r).toEqual({
    status: 409,
    text: `{"error":{"code":"insufficient_funds","message":"account ${poor} has insufficient funds"}}`,
    replayed: 'true',
    type: 'application/json; charset=utf-8',
  });
  // Nothing calls keel_transfer any more: 0005 dropped it.
  const [fn] = await psql<{ f: string | null }>(
    ctx.url,
    `select to_regprocedure('keel_transfer(text,text,uuid,bigint,bigint,bigint,bigint)')::text as f`,
  );
  expect(fn).toEqual({ f: null });
});

test("a transfer's JSON is one serializer's: the 201, its replay, the read and the list agree", async () => {
  const from = await openAccount(100);
  const to = await openAccount(0);
  const key = `json-${from}`;
  const first = await transfer({ from, to, amount: 7 }, key);
  expect(first.status).toBe(201);
  const again = await transfer({ from, to, amount: 7 }, key);
  expect(again).toEqual({ ...first, replayed: 'true' });
  const created = JSON.parse(first.text) as { id: number; created_at: string };
  expect(Object.keys(created)).toEqual(['id', 'from', 'to', 'amount', 'created_at']);
  expect(created.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  const read = await fetch(`${ctx.w.base}/api/transfers/${created.id}`);
  expect(await read.text()).toBe(first.text);
  const list = await call(ctx.w.base, 'GET', `/api/accounts/${from}/transfers`);
  expect(list.status).toBe(200);
  expect(JSON.stringify(list.body.items[0])).toBe(first.text);
  // The stored answer is keel_transfer_json's text for that row.
  const [row] = await psql<{ same: boolean }>(
    ctx.url,
    `select k.body = keel_transfer_json(t) as same from idempotency_keys k, transfers t
     where k.key = 'client:${key}' and t.id = ${created.id}`,
  );
  expect(row).toEqual({ same: true });
});
