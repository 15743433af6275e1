/**
 * The error middleware through `createApp(...).callback()`, no database: whatever the ledger
 * throws or refuses becomes the contract's body, status and headers, and only a 500 is logged
 * with its stack (a 503 with its code). `GET /api/accounts/:id` throws what the test says.
 */
import {
  AppError,
  ClientGoneError,
  UnavailableError,
  ValidationError,
} from '../../../../src/errors';
import type { Account } from '../../../../src/ledger/accounts';
import { appWith, type AppUnderTest } from '../serve';

let app: AppUnderTest;
const throws = new Map<number, () => unknown>();

beforeAll(async () => {
  app = await appWith({
    accounts: {
      get: async (id: number): Promise<Account> => {
        throw throws.get(id)!();
      },
    },
    transfers: {
      create: async (input) => ({
        refused: { kind: 'insufficient_funds', account: input.from },
        replayed: false,
      }),
    },
  });
});

afterAll(() => app.close());

async function answerTo(error: () => unknown) {
  const id = throws.size + 1;
  throws.set(id, error);
  const before = app.logs.length;
  const res = await fetch(`${app.base}/api/accounts/${id}`, {
    headers: { 'x-request-id': `r-${id}` },
  });
  return { res, text: await res.text(), logs: app.logs.slice(before) };
}

test('an unexpected error is a bare 500: nothing of it reaches the client, its stack is logged once', async () => {
  const { res, text, logs } = await answerTo(
    () => new Error('select * from accounts failed at postgres://keel:secret@db/keel'),
  );
  expect(res.status).toBe(500);
  expect(text).toBe('{"error":{"code":"internal","message":"internal error"}}');
  expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
  const failed = logs.filter((l) => l.msg === 'request failed');
  expect(failed).toHaveLength(1);
  expect(failed[0]).toMatchObject({
    reqId: 'r-1',
    stack: expect.stringContaining('Error: select'),
  });
  // An internal error raised on purpose keeps its words in the log, not in the answer.
  const own = await answerTo(() => new AppError('internal', 'pool state: 3 of 10 broken'));
  expect(own.text).toBe('{"error":{"code":"internal","message":"internal error"}}');
});

test('a 503 carries Retry-After and is logged with its code, without a stack', async () => {
  const { res, text, logs } = await answerTo(() => new UnavailableError('database_unavailable'));
  expect(res.status).toBe(503);
  expect(res.headers.get('retry-after')).toBe('2');
  expect(JSON.parse(text)).toEqual({
    error: { code: 'database_unavailable', message: 'the database is unavailable, retry later' },
  });
  expect(logs.find((l) => l.msg === 'request answered 503')).toMatchObject({
    code: 'database_unavailable',
  });
  expect(JSON.stringify(logs)).not.toContain('"stack"');
});

test('outcome_unknown and shutting_down answer their own codes, each with Retry-After', async () => {
  for (const code of ['outcome_unknown', 'shutting_down'] as const) {
    const { res, text } = await answerTo(() => new UnavailableError(code));
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(JSON.parse(text).error.code).toBe(code);
  }
});

test('validation details reach the client; a client that left gets no error body', async () => {
  const details = [{ path: 'name', message: 'is required' }];
  const bad = await answerTo(() => new ValidationError('body: name is required', details));
  expect(bad.res.status).toBe(400);
  expect(JSON.parse(bad.text)).toEqual({
    error: { code: 'invalid_request', message: 'body: name is required', details },
  });
  const gone = await answerTo(() => new ClientGoneError());
  expect(gone.res.status).toBe(499);
  // Nobody reads it: no error body is made (Koa writes the bare status).
  expect(gone.text).not.toContain('"error"');
});

test("other libraries' HTTP errors map onto the contract's codes", async () => {
  const httpError = (status: number, expose: boolean) =>
    Object.assign(new Error(`raw ${status}`), { status, expose });
  const cases: Array<[unknown, number, string, string]> = [
    [httpError(413, true), 413, 'payload_too_large', 'the request body is too large'],
    [httpError(415, true), 415, 'unsupported_media_type', 'the request body must be JSON'],
    [httpError(404, true), 404, 'not_found', 'not found'],
    [httpError(400, true), 400, 'invalid_request', 'raw 400'],
    [httpError(400, false), 400, 'invalid_request', 'invalid request'],
    [
      new AppError('unauthorized'),
      401,
      'unauthorized',
      'a valid bearer token is required for /metrics',
    ],
  ];
  for (const [err, status, code, message] of cases) {
    const { res, text } = await answerTo(() => err);
    expect({ status: res.status, body: JSON.parse(text) }).toEqual({
      status,
      body: { error: { code, message } },
    });
  }
});

test('a refused transfer is answered by the catalogue, with the request’s Idempotency-Key', async () => {
  const res = await fetch(`${app.base}/api/transfers`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'Idempotency-Key': 'k-1' },
    body: '{"from":7,"to":8,"amount":5}',
  });
  expect(res.status).toBe(409);
  expect(res.headers.get('idempotency-key')).toBe('k-1');
  expect(res.headers.get('idempotent-replayed')).toBeNull();
  expect(await res.text()).toBe(
    '{"error":{"code":"insufficient_funds","message":"account 7 has insufficient funds"}}',
  );
});
