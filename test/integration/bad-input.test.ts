/**
 * Bad input is refused with the contract's 4xx and changes nothing in the database, through
 * real HTTP (raw sockets where the bytes matter) against real Postgres.
 */
import { psql } from '../support/postgres';
import { rawConnect, type RawResponse } from '../support/raw-http';
import { waitFor } from '../support/wait';
import { call, startTestWorker, useWorker, type TestWorker } from '../support/worker';

// Scaled down: 1 kB bodies, headers within 500 ms, whole requests within 1 s.
const ctx = useWorker({
  BODY_LIMIT: '1kb',
  HEADERS_TIMEOUT_MS: '500',
  REQUEST_RECEIVE_TIMEOUT_MS: '1000',
});

let a: number;
let b: number;

beforeAll(async () => {
  a = (await call(ctx.w.base, 'POST', '/api/accounts', { name: 'a', balance: 100 })).body.id;
  b = (await call(ctx.w.base, 'POST', '/api/accounts', { name: 'b', balance: 0 })).body.id;
});

async function snapshot() {
  return psql(
    ctx.url,
    `select (select count(*) from accounts)::int as accounts,
            (select count(*) from transfers)::int as transfers,
            (select count(*) from idempotency_keys)::int as keys,
            (select string_agg(id || ':' || name || ':' || balance, ',' order by id) from accounts) as rows`,
  );
}

/** Runs `fn`, then checks that the database looks exactly as before. */
async function unchanged<T>(fn: () => Promise<T>): Promise<T> {
  const before = await snapshot();
  const out = await fn();
  expect(await snapshot()).toEqual(before);
  return out;
}

function expectInvalid(r: RawResponse | { status: number; body: any }, field?: string) {
  const body = typeof r.body === 'string' ? JSON.parse(r.body) : r.body;
  expect(r.status).toBe(400);
  expect(body.error.code).toBe('invalid_request');
  if (field) expect(body.error.details).toEqual([expect.objectContaining({ path: field })]);
}

function post(path: string, body: Buffer | string, headers: string[] = []): Buffer {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  return Buffer.concat([
    Buffer.from(
      `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
        headers.map((h) => `${h}\r\n`).join('') +
        `Content-Length: ${bytes.length}\r\n\r\n`,
    ),
    bytes,
  ]);
}

async function once(bytes: Buffer): Promise<RawResponse> {
  const c = await rawConnect(ctx.w.worker.port);
  try {
    c.write(bytes);
    const r = await c.next();
    if (!r) throw new Error('closed without an answer');
    return r;
  } finally {
    c.destroy();
  }
}

describe('text Postgres cannot store', () => {
  test.each([
    ['U+0000', '{"name":"a\\u0000b"}'],
    ['a lone high surrogate', '{"name":"a\\ud800"}'],
    ['a lone low surrogate', '{"name":"\\udc00b"}'],
  ])('%s in a name: 400 naming the field', async (_what, body) => {
    const r = await unchanged(() => call(ctx.w.base, 'POST', '/api/accounts', body));
    expectInvalid(r, 'name');
    expect(r.body.error.details[0].message).toMatch(/U\+0000|surrogate/);
  });

  test('a key with U+0000 is refused too; a paired surrogate (emoji) is stored as sent', async () => {
    expectInvalid(
      await unchanged(() => call(ctx.w.base, 'POST', '/api/accounts', '{"name":"x","\\u0000":1}')),
    );
    const ok = await call(ctx.w.base, 'POST', '/api/accounts', '{"name":"\\ud83d\\ude00"}');
    expect(ok.status).toBe(201);
    const [row] = await psql<{ name: string }>(
      ctx.url,
      `select name from accounts where id = ${ok.body.id}`,
    );
    expect(row!.name).toBe('\u{1F600}');
    await psql(ctx.url, `delete from accounts where id = ${ok.body.id}`);
  });
});

test('a body that is not valid UTF-8: 400, never stored with replacement characters', async () => {
  const bytes = Buffer.concat([
    Buffer.from('{"name":"a'),
    Buffer.from([0xff, 0xfe]),
    Buffer.from('"}'),
  ]);
  const r = await unchanged(() => once(post('/api/accounts', bytes)));
  expectInvalid(r, 'body');
  expect(JSON.parse(r.body).error.message).toMatch(/UTF-8/);
});

describe('deeply nested JSON (valid for JSON.parse), under the default 100 kB limit', () => {
  let w: TestWorker;
  beforeAll(async () => {
    w = await startTestWorker(ctx.url);
  });
  afterAll(() => w.stop());

  const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
  test.each([
    ['20,000 nested arrays as the body', '/api/accounts', deep(20_000)],
    ['as an extra field of an account', '/api/accounts', `{"name":"n","pad":${deep(20_000)}}`],
    ['as a field of a transfer', '/api/transfers', `{"from":1,"to":2,"amount":${deep(20_000)}}`],
  ])('%s: 400 invalid_request naming what is wrong, nothing stored', async (_what, path, body) => {
    const r = await unchanged(async () => {
      const c = await rawConnect(w.worker.port);
      try {
        c.write(post(path, body));
        return await c.next();
      } finally {
        c.destroy();
      }
    });
    expectInvalid(r!);
    expect(JSON.parse(r!.body).error.details[0].message).toMatch(/nested deeper than \d+ levels/);
  });
});

describe('POST with no body', () => {
  test.each([
    ['no Content-Type, no length', 'POST /api/accounts HTTP/1.1\r\nHost: x\r\n\r\n'],
    [
      'a form type and length 0 (curl -d "")',
      'POST /api/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n\r\n',
    ],
    [
      'JSON type and length 0',
      'POST /api/transfers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n',
    ],
  ])('%s: 400, not 415', async (_what, head) => {
    expectInvalid(await unchanged(() => once(Buffer.from(head))), 'body');
  });
});

test('Idempotency-Key sent twice: 400 and no transfer', async () => {
  const body = JSON.stringify({ from: a, to: b, amount: 5 });
  const r = await unchanged(() =>
    once(post('/api/transfers', body, ['Idempotency-Key: one', 'Idempotency-Key: two'])),
  );
  expectInvalid(r, 'Idempotency-Key');
  expect(r.headers['idempotency-key']).toMatch(/^keel-gen-/);
});

test('headers over the size limit: a JSON 400 with X-Request-Id and Connection: close', async () => {
  const r = await once(
    Buffer.from(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`),
  );
  expectInvalid(r);
  expect(JSON.parse(r.body).error.message).toMatch(/headers are larger than \d+ bytes/);
  expect(r.headers.connection).toBe('close');
  expect(r.headers['x-request-id']).toMatch(/^[\x20-\x7e]{1,128}$/);
});

/** A request whose body stops short of its Content-Length: 408, Connection: close, a clean close. */
async function expectStalled408(port: number, path: string, partial: string) {
  const c = await rawConnect(port);
  try {
    const r = await unchanged(async () => {
      c.write(
        `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n${partial}`,
      );
      return c.next();
    });
    expect(r?.status).toBe(408);
    expect(JSON.parse(r!.body).error.code).toBe('request_timeout');
    expect(r!.headers.connection).toBe('close');
    expect(r!.headers['x-request-id']).toMatch(/^[\x20-\x7e]{1,128}$/);
    expect(await c.closed).not.toBe('reset');
  } finally {
    c.destroy();
  }
}

describe('requests that do not arrive in time', () => {
  test('a body shorter than its Content-Length: 408 request_timeout and the socket closed', async () => {
    await expectStalled408(ctx.w.worker.port, '/api/accounts', '{"name":"short"');
  });

  test('with the request deadline shorter than the receive timeout (as by default): still 408, never a 503', async () => {
    // The defaults scaled down: REQUEST_TIMEOUT_MS 10 s < REQUEST_RECEIVE_TIMEOUT_MS 30 s
    // (the deadline and its 1 s settle time end well before the receive timeout).
    const w = await startTestWorker(ctx.url, {
      REQUEST_TIMEOUT_MS: '300',
      HEADERS_TIMEOUT_MS: '500',
      REQUEST_RECEIVE_TIMEOUT_MS: '2500',
    });
    try {
      await expectStalled408(w.worker.port, '/api/transfers', '{"from":');
      // The access log and the metrics say what the client read: 408, not a 499 or a 503.
      const line = () => w.logs.find((l) => l.msg === 'request' && l.route === '/api/transfers');
      await waitFor(() => line() !== undefined);
      expect(line()).toMatchObject({ status: 408 });
    } finally {
      await w.stop();
    }
  });

  test('headers that trickle in: 408 and the socket closed', async () => {
    const c = await rawConnect(ctx.w.worker.port);
    c.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    // One header line now and then, never the blank line that ends them.
    let n = 0;
    const drip = setInterval(() => c.write(`X-Drip-${n++}: 1\r\n`), 100);
    try {
      const r = await c.next();
      expect(r?.status).toBe(408);
      expect(JSON.parse(r!.body).error.code).toBe('request_timeout');
      await c.closed;
    } finally {
      clearInterval(drip);
      c.destroy();
    }
  });
});

describe('413 leaves the connection usable or closes it cleanly', () => {
  test('a body a little over the limit: 413, then the next request on the socket answers', async () => {
    const c = await rawConnect(ctx.w.worker.port);
    try {
      const big = await unchanged(async () => {
        c.write(post('/api/accounts', JSON.stringify({ name: 'x', pad: 'y'.repeat(5000) })));
        return c.next();
      });
      expect(big?.status).toBe(413);
      expect(JSON.parse(big!.body).error.code).toBe('payload_too_large');
      c.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      const next = await c.next();
      expect(next?.status).toBe(200);
    } finally {
      c.destroy();
    }
  });

  test('a declared length over the limit and a client that stops sending: 413 at once, Connection: close', async () => {
    const c = await rawConnect(ctx.w.worker.port);
    try {
      // 4 kB declared against a 1 kB limit; 10 bytes sent, then nothing: the answer must not
      // wait for the rest (before, it waited until the receive timeout cut the socket: 408).
      const r = await unchanged(async () => {
        c.write(
          'POST /api/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{"name":"x',
        );
        return c.next();
      });
      expect(r?.status).toBe(413);
      expect(JSON.parse(r!.body).error.code).toBe('payload_too_large');
      expect(r!.headers.connection).toBe('close');
      expect(await c.closed).not.toBe('reset');
    } finally {
      c.destroy();
    }
  });

  test('a chunked body over the limit: 413, then the next request answers', async () => {
    const c = await rawConnect(ctx.w.worker.port);
    try {
      const chunk = 'y'.repeat(600);
      c.write(
        'POST /api/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n' +
          [1, 2, 3, 4].map(() => `${chunk.length.toString(16)}\r\n${chunk}\r\n`).join('') +
          '0\r\n\r\n',
      );
      expect((await c.next())?.status).toBe(413);
      c.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      expect((await c.next())?.status).toBe(200);
    } finally {
      c.destroy();
    }
  });

  test('a body far over the limit: 413 with Connection: close, then a clean close', async () => {
    const c = await rawConnect(ctx.w.worker.port);
    try {
      const huge = 'y'.repeat(2 * 1024 * 1024);
      c.write(post('/api/accounts', JSON.stringify({ name: 'x', pad: huge })));
      const r = await c.next();
      expect(r?.status).toBe(413);
      expect(r!.headers.connection).toBe('close');
      // A second request is either answered or meets a closed socket, never a hang.
      c.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      const next = await c.next();
      if (next) expect(next.status).toBe(200);
      else expect(['end', 'close', 'reset']).toContain(await c.closed);
    } finally {
      c.destroy();
    }
  });
});

test('HTTP_MAX_CONNECTIONS: a connection over the cap is closed on arrival; below it, served', async () => {
  const capped = await startTestWorker(ctx.url, { HTTP_MAX_CONNECTIONS: '2' });
  const open: Array<Awaited<ReturnType<typeof rawConnect>>> = [];
  try {
    for (let i = 0; i < 2; i++) {
      const c = await rawConnect(capped.worker.port);
      open.push(c);
      c.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      expect((await c.next())?.status).toBe(200); // held open by keep-alive
    }
    const third = await rawConnect(capped.worker.port);
    open.push(third);
    third.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await third.next()).toBeNull();
    open.shift()!.destroy();
    const connections = () =>
      new Promise<number>((r) => capped.worker.server.getConnections((_e, n) => r(n)));
    await waitFor(async () => (await connections()) === 1);
    const fourth = await rawConnect(capped.worker.port);
    open.push(fourth);
    fourth.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await fourth.next())?.status).toBe(200);
  } finally {
    for (const c of open) c.destroy();
    await capped.stop();
  }
});
