/**
 * The HTTP layer at its seam: the real Koa app (`createApp`) over real HTTP on port 0, with no
 * database. The ledger handed in fails the test if it is ever reached: bad input, unknown
 * routes and the not-yet-migrated state must all be answered before any database work, in the
 * contract's error shape.
 */
import type { Db } from '../../../src/db/runner';
import type { Accounts } from '../../../src/ledger/accounts';
import type { Transfers } from '../../../src/ledger/transfers';
import { createReadiness, type Readiness } from '../../../src/lifecycle/readiness';
import { fetchChecked } from '../../support/openapi';
import { appWith, type AppUnderTest } from './serve';

/** Any call on it is a defect: the request should have been answered before the database. */
function unreachable<T extends object>(name: string, reached: string[]): T {
  return new Proxy({} as T, {
    get: (_t, prop) => () => {
      reached.push(`${name}.${String(prop)}`);
      throw new Error(`${name}.${String(prop)} reached`);
    },
  });
}

let server: AppUnderTest;
let base: string;
let readiness: Readiness;
let logs: Array<Record<string, unknown>>;
const reached: string[] = [];

beforeAll(async () => {
  server = await appWith({
    db: unreachable<Db>('db', reached),
    accounts: unreachable<Accounts>('accounts', reached),
    transfers: unreachable<Transfers>('transfers', reached),
  });
  ({ base, readiness, logs } = server);
});

afterAll(() => server.close());

afterEach(() => {
  expect(reached).toEqual([]);
});

/** Every answer is checked against docs/openapi.json too (test/support/openapi). */
async function send(method: string, path: string, body?: string | Buffer, headers = {}) {
  const res = await fetchChecked(`${base}${path}`, { method, body, headers });
  return { status: res.status, headers: res.headers, json: res.text ? JSON.parse(res.text) : null };
}

const json = { 'content-type': 'application/json' };

test('bad transfer bodies are answered 400/415/413 in the contract shape, before the ledger', async () => {
  const cases: Array<[string | Buffer, Record<string, string>, number, string]> = [
    ['{"from":1,"to":2', json, 400, 'invalid_request'],
    ['{"from":1,"to":2,"amount":0}', json, 400, 'invalid_request'],
    ['{"from":1,"to":1,"amount":5}', json, 400, 'invalid_request'],
    ['{"from":1,"to":2,"amount":1.5}', json, 400, 'invalid_request'],
    [Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]), json, 400, 'invalid_request'],
    [
      'from=1&to=2',
      { 'content-type': 'application/x-www-form-urlencoded' },
      415,
      'unsupported_media_type',
    ],
    [
      JSON.stringify({ from: 1, to: 2, amount: 1, pad: 'x'.repeat(2000) }),
      json,
      413,
      'payload_too_large',
    ],
  ];
  for (const [body, headers, status, code] of cases) {
    const r = await send('POST', '/api/transfers', body, headers);
    expect({ status: r.status, code: r.json?.error?.code }).toEqual({ status, code });
    expect(typeof r.json.error.message).toBe('string');
    expect(r.headers.get('x-request-id')).toBeTruthy();
  }
});

test('text Postgres cannot store is a 400 naming the field', async () => {
  const r = await send('POST', '/api/accounts', '{"name":"a\\u0000b"}', json);
  expect(r.status).toBe(400);
  expect(r.json.error.code).toBe('invalid_request');
  expect(JSON.stringify(r.json.error.details)).toContain('name');
});

test('unknown routes and methods: 404 and 405 with Allow', async () => {
  const missing = await send('GET', '/api/nothing-here');
  expect(missing.status).toBe(404);
  expect(missing.json.error.code).toBe('not_found');
  const wrong = await send('DELETE', '/api/transfers');
  expect(wrong.status).toBe(405);
  expect(wrong.json.error.code).toBe('method_not_allowed');
  expect(wrong.headers.get('allow')).toContain('POST');
});

test('before the schema is in place the API answers 503 with Retry-After; /healthz stays 200', async () => {
  const booting = createReadiness();
  const original = readiness.migrated;
  readiness.migrated = booting.migrated;
  try {
    const r = await send('GET', '/api/accounts/1');
    expect(r.status).toBe(503);
    expect(r.json.error.code).toBe('database_unavailable');
    expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await send('GET', '/healthz')).status).toBe(200);
  } finally {
    readiness.migrated = original;
  }
});

test('every request writes one access-log line, and a 4xx writes no stack', async () => {
  const before = logs.length;
  await send('POST', '/api/transfers', '{', json);
  const lines = logs.slice(before);
  expect(lines.filter((l) => l.msg === 'request')).toHaveLength(1);
  expect(lines.filter((l) => /"stack"|\\n\s+at /.test(JSON.stringify(l)))).toEqual([]);
});
