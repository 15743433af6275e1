/**
 * The HTTP contract (docs/api.md), rule by rule, through real HTTP and Postgres. Every answer is
 * also checked against docs/openapi.json (`call` and `fetchChecked` do it).
 */
import { fetchChecked } from '../support/openapi';
import { psql } from '../support/postgres';
import { call, useWorker } from '../support/worker';

const ctx = useWorker({ BODY_LIMIT: '1kb' });

async function account(balance = 0, name = 'acct'): Promise<number> {
  const r = await call(ctx.base, 'POST', '/api/accounts', { name, balance });
  expect(r.status).toBe(201);
  return r.body.id as number;
}

function expectError(
  r: { status: number; body: any; headers: Headers },
  status: number,
  code: string,
) {
  expect(r.status).toBe(status);
  expect(r.body).toEqual({ error: expect.objectContaining({ code, message: expect.any(String) }) });
  expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8');
  expect(JSON.stringify(r.body)).not.toMatch(/select|insert|postgres:\/\/|at .*\.ts:/i);
}

describe('operations endpoints', () => {
  test('healthz and readyz', async () => {
    expect(await call(ctx.base, 'GET', '/healthz')).toMatchObject({
      status: 200,
      body: { status: 'ok' },
    });
    expect(await call(ctx.base, 'GET', '/readyz')).toMatchObject({
      status: 200,
      body: { status: 'ready' },
    });
  });

  test('openapi.json is the OpenAPI 3.1 document of this API', async () => {
    const r = await call(ctx.base, 'GET', '/openapi.json');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      openapi: expect.stringMatching(/^3\.1\./),
      info: { version: '1.2' },
    });
    expect(Object.keys(r.body.paths)).toContain('/api/transfers');
  });

  test('metrics is a Prometheus exposition', async () => {
    const res = await fetchChecked(`${ctx.base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0.0.4/);
    const text = res.text;
    expect(text).toMatch(/^# HELP /m);
    expect(text).toContain('keel_db_connections_open');
    expect(text).toContain('http_requests_total');
  });
});

describe('X-Request-Id', () => {
  test('echoes an acceptable id and generates one otherwise', async () => {
    const echoed = await call(ctx.base, 'GET', '/healthz', undefined, {
      'X-Request-Id': 'abc-123 xyz',
    });
    expect(echoed.headers.get('x-request-id')).toBe('abc-123 xyz');
    const long = await call(ctx.base, 'GET', '/healthz', undefined, {
      'X-Request-Id': 'x'.repeat(129),
    });
    expect(long.headers.get('x-request-id')).not.toBe('x'.repeat(129));
    expect(long.headers.get('x-request-id')).toMatch(/^[\x20-\x7e]{1,128}$/);
    const missing = await call(ctx.base, 'GET', '/nope');
    expect(missing.headers.get('x-request-id')).toMatch(/^[\x20-\x7e]{1,128}$/);
  });
});

describe('accounts', () => {
  test('create, fetch, Location', async () => {
    const r = await call(ctx.base, 'POST', '/api/accounts', { name: 'Ada', balance: 1500 });
    expect(r.status).toBe(201);
    expect(r.body).toEqual({
      id: expect.any(Number),
      name: 'Ada',
      balance: 1500,
      created_at: expect.any(String),
    });
    expect(new Date(r.body.created_at).toISOString()).toBe(r.body.created_at);
    expect(r.headers.get('location')).toBe(`/api/accounts/${r.body.id}`);
    expect(await call(ctx.base, 'GET', `/api/accounts/${r.body.id}`)).toMatchObject({
      status: 200,
      body: r.body,
    });
  });

  test('balance defaults to 0 and the maximum is 2^53-1', async () => {
    expect((await call(ctx.base, 'POST', '/api/accounts', { name: 'z' })).body.balance).toBe(0);
    const max = await call(ctx.base, 'POST', '/api/accounts', {
      name: 'max',
      balance: 9007199254740991,
    });
    expect(max.body.balance).toBe(9007199254740991);
  });

  test.each<[unknown, string]>([
    [{}, 'missing name'],
    [{ name: '' }, 'empty name'],
    [{ name: 'x'.repeat(101) }, 'name too long'],
    [{ name: 5 }, 'wrong type'],
    [{ name: 'a', balance: -1 }, 'negative'],
    [{ name: 'a', balance: 1.5 }, 'fraction'],
    [{ name: 'a', balance: '10' }, 'string balance'],
    [{ name: 'a', balance: 9007199254740992 }, 'too large'],
    [[1, 2], 'array body'],
    ['null', 'null body'],
  ])('400 for %j (%s)', async (body) => {
    expectError(await call(ctx.base, 'POST', '/api/accounts', body), 400, 'invalid_request');
  });

  test('100-character names count characters, not bytes', async () => {
    const r = await call(ctx.base, 'POST', '/api/accounts', { name: 'é'.repeat(100) });
    expect(r.status).toBe(201);
  });

  test('malformed JSON, media type and size', async () => {
    expectError(await call(ctx.base, 'POST', '/api/accounts', '{"name":'), 400, 'invalid_request');
    const text = await fetchChecked(`${ctx.base}/api/accounts`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'hi',
    });
    expect(text.status).toBe(415);
    expect((JSON.parse(text.text) as { error: { code: string } }).error.code).toBe(
      'unsupported_media_type',
    );
    const big = await call(ctx.base, 'POST', '/api/accounts', { name: 'a', pad: 'x'.repeat(2000) });
    expectError(big, 413, 'payload_too_large');
  });

  test('unknown and malformed ids', async () => {
    expectError(await call(ctx.base, 'GET', '/api/accounts/999999'), 404, 'not_found');
    for (const bad of ['abc', '0', '-1', '1.5', '99999999999999999999']) {
      expectError(await call(ctx.base, 'GET', `/api/accounts/${bad}`), 400, 'invalid_request');
    }
  });

  test('pagination by id with next cursor', async () => {
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) ids.push(await account(0, `page-${i}`));
    const after = ids[0]! - 1;
    const first = await call(ctx.base, 'GET', `/api/accounts?limit=2&after=${after}`);
    expect(first.status).toBe(200);
    expect(first.body.items.map((a: { id: number }) => a.id)).toEqual(ids.slice(0, 2));
    expect(first.body.next).toBe(ids[1]);
    const all: number[] = [];
    let cursor: number | null = 0;
    while (cursor !== null) {
      const page: { body: { items: Array<{ id: number }>; next: number | null } } = await call(
        ctx.base,
        'GET',
        `/api/accounts?limit=3&after=${cursor}`,
      );
      all.push(...page.body.items.map((a) => a.id));
      cursor = page.body.next;
    }
    expect(all).toEqual([...all].sort((a, b) => a - b));
    expect(all).toEqual(expect.arrayContaining(ids));
    const def = await call(ctx.base, 'GET', '/api/accounts');
    expect(def.body.items.length).toBeLessThanOrEqual(20);
    const last = await call(ctx.base, 'GET', `/api/accounts?after=${all[all.length - 1]}`);
    expect(last.body).toEqual({ items: [], next: null });
  });

  test.each(['limit=0', 'limit=101', 'limit=abc', 'after=-1', 'after=x', 'limit=1&limit=2'])(
    '400 for query %s',
    async (q) => {
      expectError(await call(ctx.base, 'GET', `/api/accounts?${q}`), 400, 'invalid_request');
    },
  );
});

describe('transfers', () => {
  test('moves money and answers 201 with Location', async () => {
    const a = await account(1000);
    const b = await account(0);
    const r = await call(ctx.base, 'POST', '/api/transfers', { from: a, to: b, amount: 250 });
    expect(r.status).toBe(201);
    expect(r.body).toEqual({
      id: expect.any(Number),
      from: a,
      to: b,
      amount: 250,
      created_at: expect.any(String),
    });
    expect(r.headers.get('location')).toBe(`/api/transfers/${r.body.id}`);
    expect(r.headers.get('idempotent-replayed')).toBeNull();
    expect((await call(ctx.base, 'GET', `/api/accounts/${a}`)).body.balance).toBe(750);
    expect((await call(ctx.base, 'GET', `/api/accounts/${b}`)).body.balance).toBe(250);
    expect(await call(ctx.base, 'GET', `/api/transfers/${r.body.id}`)).toMatchObject({
      status: 200,
      body: r.body,
    });
  });

  test('refusals: same account, unknown account, insufficient funds, bad input', async () => {
    const a = await account(100);
    const b = await account(0);
    expectError(
      await call(ctx.base, 'POST', '/api/transfers', { from: a, to: a, amount: 1 }),
      400,
      'invalid_request',
    );
    expectError(
      await call(ctx.base, 'POST', '/api/transfers', { from: a, to: 987654, amount: 1 }),
      404,
      'not_found',
    );
    expectError(
      await call(ctx.base, 'POST', '/api/transfers', { from: 987654, to: a, amount: 1 }),
      404,
      'not_found',
    );
    expectError(
      await call(ctx.base, 'POST', '/api/transfers', { from: a, to: b, amount: 101 }),
      409,
      'insufficient_funds',
    );
    for (const body of [
      { from: a, to: b },
      { from: a, to: b, amount: 0 },
      { from: a, to: b, amount: -5 },
      { from: a, to: b, amount: 1.5 },
      { from: String(a), to: b, amount: 1 },
      { from: 0, to: b, amount: 1 },
    ]) {
      expectError(await call(ctx.base, 'POST', '/api/transfers', body), 400, 'invalid_request');
    }
    expectError(await call(ctx.base, 'GET', '/api/transfers/424242'), 404, 'not_found');
    expectError(await call(ctx.base, 'GET', '/api/transfers/abc'), 400, 'invalid_request');
    // None of the refused transfers exists; the balances are untouched.
    const rows = await psql(
      ctx.url,
      `select count(*)::int as n from transfers where from_id = ${a} or to_id = ${a}`,
    );
    expect(rows[0]!.n).toBe(0);
    expect((await call(ctx.base, 'GET', `/api/accounts/${a}`)).body.balance).toBe(100);
  });

  test('a transfer that would push a balance past 2^53-1 is refused and changes nothing', async () => {
    const rich = await account(9007199254740991);
    const other = await account(10);
    const r = await call(ctx.base, 'POST', '/api/transfers', { from: other, to: rich, amount: 5 });
    expectError(r, 400, 'invalid_request');
    expect((await call(ctx.base, 'GET', `/api/accounts/${other}`)).body.balance).toBe(10);
    expect((await call(ctx.base, 'GET', `/api/accounts/${rich}`)).body.balance).toBe(
      9007199254740991,
    );
  });

  test('Idempotency-Key: replay, reuse with another body, bad keys', async () => {
    const a = await account(1000);
    const b = await account(0);
    const key = { 'Idempotency-Key': `key-${a}` };
    const first = await call(
      ctx.base,
      'POST',
      '/api/transfers',
      { from: a, to: b, amount: 10 },
      key,
    );
    expect(first.status).toBe(201);
    const again = await call(
      ctx.base,
      'POST',
      '/api/transfers',
      { amount: 10, to: b, from: a },
      key,
    );
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(JSON.stringify(again.body)).toBe(JSON.stringify(first.body));
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('location')).toBe(first.headers.get('location'));
    expectError(
      await call(ctx.base, 'POST', '/api/transfers', { from: a, to: b, amount: 11 }, key),
      422,
      'idempotency_key_reused',
    );
    expect((await call(ctx.base, 'GET', `/api/accounts/${a}`)).body.balance).toBe(990);
    const badKey = await call(
      ctx.base,
      'POST',
      '/api/transfers',
      { from: a, to: b, amount: 1 },
      { 'Idempotency-Key': 'k'.repeat(201) },
    );
    expectError(badKey, 400, 'invalid_request');
    // Every answer to a transfer names a key: here one the server made (nothing was applied).
    expect(badKey.headers.get('idempotency-key')).toMatch(/^keel-gen-/);
    // A refusal is remembered too: the same key answers the same 409 even after funding.
    const poor = await account(5);
    const k2 = { 'Idempotency-Key': `poor-${poor}` };
    expectError(
      await call(ctx.base, 'POST', '/api/transfers', { from: poor, to: b, amount: 6 }, k2),
      409,
      'insufficient_funds',
    );
    await call(ctx.base, 'POST', '/api/transfers', { from: a, to: poor, amount: 100 });
    const replay = await call(
      ctx.base,
      'POST',
      '/api/transfers',
      { from: poor, to: b, amount: 6 },
      k2,
    );
    expectError(replay, 409, 'insufficient_funds');
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
  });

  test('transfers of an account, paginated; 404 for an unknown account', async () => {
    const a = await account(100);
    const b = await account(100);
    const ids: number[] = [];
    for (let i = 0; i < 3; i++)
      ids.push(
        (await call(ctx.base, 'POST', '/api/transfers', { from: a, to: b, amount: 1 })).body.id,
      );
    ids.push(
      (await call(ctx.base, 'POST', '/api/transfers', { from: b, to: a, amount: 1 })).body.id,
    );
    const p1 = await call(ctx.base, 'GET', `/api/accounts/${a}/transfers?limit=3`);
    expect(p1.body.items.map((t: { id: number }) => t.id)).toEqual(ids.slice(0, 3));
    expect(p1.body.next).toBe(ids[2]);
    const p2 = await call(
      ctx.base,
      'GET',
      `/api/accounts/${a}/transfers?limit=3&after=${p1.body.next}`,
    );
    expect(p2.body).toEqual({
      items: [expect.objectContaining({ id: ids[3], from: b, to: a })],
      next: null,
    });
    expectError(await call(ctx.base, 'GET', '/api/accounts/777777/transfers'), 404, 'not_found');
  });
});

describe('routing', () => {
  test('unknown route 404, wrong method 405 with Allow', async () => {
    expectError(await call(ctx.base, 'GET', '/api/nothing'), 404, 'not_found');
    const r = await call(ctx.base, 'DELETE', '/api/accounts');
    expectError(r, 405, 'method_not_allowed');
    expect(r.headers.get('allow')).toContain('POST');
    const put = await call(ctx.base, 'PUT', '/api/transfers/1');
    expectError(put, 405, 'method_not_allowed');
    expect(put.headers.get('allow')).toContain('GET');
  });

  test('every answer carries a request id and JSON', async () => {
    for (const [method, path] of [
      ['GET', '/healthz'],
      ['GET', '/nope'],
      ['PATCH', '/api/accounts/1'],
    ]) {
      const r = await fetchChecked(ctx.base + path!, { method });
      expect(r.headers.get('x-request-id')).toBeTruthy();
      expect(r.headers.get('content-type')).toMatch(/application\/json/);
    }
  });
});
