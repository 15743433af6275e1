/**
 * Reading a JSON body (src/http/body.ts) through `createApp(...).callback()`, no database:
 * `POST /api/accounts` hands what it read to a ledger that echoes it, so a test sees either
 * the parsed body or the contract's refusal. The body limit is 1 KiB; test/unit/http/app.test.ts
 * covers malformed JSON, bad UTF-8, a form type and the 413 code.
 */
import http from 'node:http';
import { Readable } from 'node:stream';
import type { Account } from '../../../src/ledger/accounts';
import { appWith, type AppUnderTest } from './serve';

let app: AppUnderTest;
const received: unknown[] = [];

beforeAll(async () => {
  app = await appWith({
    accounts: {
      create: async (input): Promise<Account> => {
        received.push(input);
        return { id: 1, name: input.name, balance: input.balance ?? 0, created_at: 'then' };
      },
    },
  });
});

afterAll(() => app.close());

async function post(body: string | ReadableStream, headers: Record<string, string>) {
  const res = await fetch(`${app.base}/api/accounts`, {
    method: 'POST',
    body,
    headers,
    ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
  } as RequestInit);
  return { status: res.status, body: (await res.json()) as { error: { details?: unknown[] } } };
}

test('any JSON media type is read, a UTF-8 BOM is dropped, a chunked body is read whole', async () => {
  received.length = 0;
  const ok = [
    await post('{"name":"a"}', { 'content-type': 'application/merge-patch+json' }),
    await post('\ufeff{"name":"b"}', { 'content-type': 'application/json; charset=UTF-8' }),
    await post(Readable.toWeb(Readable.from(['{"name":', '"c"}'])) as ReadableStream, {
      'content-type': 'application/json',
    }),
  ];
  expect(ok.map((r) => r.status)).toEqual([201, 201, 201]);
  expect(received).toEqual([{ name: 'a' }, { name: 'b' }, { name: 'c' }]);
});

test('a charset other than UTF-8 is a 415 that names it', async () => {
  const r = await post('{"name":"a"}', { 'content-type': 'application/json; charset=latin1' });
  expect(r).toMatchObject({
    status: 415,
    body: {
      error: {
        code: 'unsupported_media_type',
        message: 'charset latin1 is not supported; use utf-8',
      },
    },
  });
});

test('no body, or only whitespace, is a 400 whatever the Content-Type says', async () => {
  const required = {
    error: {
      code: 'invalid_request',
      message: 'a JSON request body is required',
      details: [{ path: 'body', message: 'is required' }],
    },
  };
  expect(await post('', { 'content-type': 'application/x-www-form-urlencoded' })).toMatchObject({
    status: 400,
    body: required,
  });
  expect(await post(' \n\t ', { 'content-type': 'application/json' })).toMatchObject({
    status: 400,
    body: required,
  });
});

test('an unstorable key is refused like an unstorable value', async () => {
  const r = await post('{"name":"a","x\\ud800":1}', { 'content-type': 'application/json' });
  expect(r.status).toBe(400);
  expect(r.body.error.details).toHaveLength(1);
});

/** One keep-alive request on its own socket: status, message and the answer's `Connection`. */
function raw(length: number, sent: number) {
  const agent = new http.Agent({ keepAlive: true });
  return new Promise<{ status: number; message: string; connection: string | undefined }>(
    (resolve, reject) => {
      const req = http.request(`${app.base}/api/accounts`, {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': String(length) },
      });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            message: JSON.parse(text).error.message,
            connection: res.headers.connection,
          }),
        );
      });
      req.on('error', reject);
      req.end('x'.repeat(sent));
    },
  ).finally(() => agent.destroy());
}

test('over the limit: 413 naming it; a body that came whole is discarded so the connection stays', async () => {
  const modest = await raw(4096, 4096);
  expect(modest).toEqual({
    status: 413,
    message: 'the request body is larger than 1024 bytes',
    connection: 'keep-alive',
  });
  // Declared over the limit and not sent: answered at once, and the connection is closed.
  const huge = await raw(2 * 1024 * 1024, 0);
  expect(huge).toMatchObject({ status: 413, connection: 'close' });
});
