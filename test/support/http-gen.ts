/**
 * fast-check generators of HTTP/1.1 requests as bytes, for the property tests of the HTTP
 * surface: JSON and not-quite-JSON bodies, framings (exact, chunked, split, a body that stops
 * short of its Content-Length), headers, methods, paths and byte-level damage. Each generated
 * request says how it is framed, so a property knows when an answer must close the socket.
 */
import fc from 'fast-check';

export interface GenRequest {
  /** Written one after the other, each as its own write. */
  pieces: Buffer[];
  /** The body stops before its declared length: the answer must close the connection. */
  short: boolean;
  /** A pause between the pieces (a slow client). */
  gapMs?: number;
  /** What the generator meant, for a failure's message. */
  label: string;
}

const CRLF = '\r\n';

/** Text with any code points, lone surrogates included (JSON.stringify escapes those). */
const anyText = fc.string({ unit: 'binary', maxLength: 40 });
const smallText = fc.oneof(fc.string({ maxLength: 12 }), anyText);

const scalar = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, 1, -1, 9007199254740991, 9007199254740992, 1e300, 1.5),
  fc.boolean(),
  fc.constant(null),
  smallText,
);

const nested = (n: number, inner: string) => '['.repeat(n) + inner + ']'.repeat(n);

/** Bodies for POST /api/accounts and /api/transfers: mostly near the real shapes. */
export function bodyText(limitBytes: number): fc.Arbitrary<Buffer> {
  const text = fc
    .oneof(
      {
        weight: 3,
        arbitrary: fc
          .record(
            { name: fc.oneof(smallText, scalar), balance: fc.option(scalar) },
            { requiredKeys: [] },
          )
          .map((v) => JSON.stringify(v)),
      },
      {
        weight: 3,
        arbitrary: fc
          .record({ from: scalar, to: scalar, amount: scalar }, { requiredKeys: [] })
          .map((v) => JSON.stringify(v)),
      },
      { weight: 2, arbitrary: fc.json({ maxDepth: 4 }) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 20_000 }).map((n) => nested(n, '')) },
      {
        weight: 1,
        arbitrary: fc
          .integer({ min: 1, max: 5_000 })
          .map((n) => `{"name":"n","x":${nested(n, '{"a":1}')}}`),
      },
      {
        weight: 1,
        arbitrary: fc.json({ maxDepth: 2 }).map((j) => j.slice(0, Math.max(0, j.length - 1))),
      },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          '',
          ' ',
          'null',
          '[]',
          '{}',
          '{"name":"a"}{"name":"b"}',
          '\ufeff{"name":"bom"}',
        ),
      },
      {
        weight: 1,
        arbitrary: fc
          .integer({ min: limitBytes - 16, max: limitBytes + 64 })
          .map((n) => `{"name":"${'y'.repeat(Math.max(0, n - 11))}"}`),
      },
    )
    .map((s) => Buffer.from(s, 'utf8'));
  const bytes = fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b));
  return fc.oneof({ weight: 6, arbitrary: text }, { weight: 1, arbitrary: bytes });
}

const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constant('application/json') },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'application/json; charset=UTF8',
      'application/merge-patch+json',
      'application/json; charset=latin1',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      '',
      null,
    ),
  },
);

const printable = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 220,
});

/** Header lines a client may send beside the framing ones. */
const extraHeaders = fc.array(
  fc.oneof(
    printable.map((v) => `Idempotency-Key: ${v}`),
    printable.map((v) => `X-Request-Id: ${v}`),
    fc.constantFrom(
      'Connection: close',
      'Connection: keep-alive',
      'Accept: */*',
      'Content-Encoding: gzip',
      'Accept-Encoding: gzip',
      'Expect: 100-continue',
    ),
    fc
      .tuple(fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/), printable)
      .map(([n, v]) => `X-${n}: ${v}`),
  ),
  { maxLength: 4 },
);

/** Splits `b` at up to three random places (each piece is its own write). */
function split(b: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => Math.floor(c * b.length)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of at) {
    if (c > from && c < b.length) out.push(b.subarray(from, c));
    from = Math.max(from, c);
  }
  out.push(b.subarray(from));
  return out.filter((p) => p.length > 0);
}

function chunked(body: Buffer, sizes: number[]): Buffer {
  const parts: Buffer[] = [];
  let i = 0;
  for (const s of sizes) {
    if (i >= body.length) break;
    const piece = body.subarray(i, i + s);
    parts.push(Buffer.from(piece.length.toString(16) + CRLF), piece, Buffer.from(CRLF));
    i += piece.length;
  }
  if (i < body.length) {
    const rest = body.subarray(i);
    parts.push(Buffer.from(rest.length.toString(16) + CRLF), rest, Buffer.from(CRLF));
  }
  parts.push(Buffer.from(`0${CRLF}${CRLF}`));
  return Buffer.concat(parts);
}

const framing = fc.constantFrom('exact', 'exact', 'exact', 'split', 'chunked', 'short');

/** A POST of a generated body to one of the ledger's write routes, framed one of four ways. */
export function postRequest(limitBytes: number): fc.Arbitrary<GenRequest> {
  return fc
    .record({
      path: fc.constantFrom('/api/accounts', '/api/transfers'),
      type: contentType,
      headers: extraHeaders,
      body: bodyText(limitBytes),
      framing,
      cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 3 }),
      sizes: fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 5 }),
      missing: fc.integer({ min: 1, max: 50 }),
      gapMs: fc.constantFrom(0, 0, 50, 200),
    })
    .map((g) => {
      const head = [
        `POST ${g.path} HTTP/1.1`,
        'Host: keel',
        ...(g.type === null ? [] : [`Content-Type: ${g.type}`]),
        ...g.headers,
      ];
      let payload: Buffer;
      if (g.framing === 'chunked') {
        head.push('Transfer-Encoding: chunked');
        payload = chunked(g.body, g.sizes);
      } else {
        // A short body declares more than it sends, and the client then waits.
        head.push(`Content-Length: ${g.body.length + (g.framing === 'short' ? g.missing : 0)}`);
        payload = g.body;
      }
      const bytes = Buffer.concat([Buffer.from(head.join(CRLF) + CRLF + CRLF, 'latin1'), payload]);
      return {
        pieces: g.framing === 'split' ? split(bytes, g.cuts) : [bytes],
        gapMs: g.framing === 'split' ? g.gapMs : 0,
        short: g.framing === 'short',
        label: `${g.framing} ${g.path} ${g.type} ${JSON.stringify(g.headers)} body=${JSON.stringify(g.body.subarray(0, 120).toString('latin1'))} (${g.body.length} bytes)`,
      };
    });
}

const idLike = fc.oneof(
  fc.nat().map(String),
  fc.constantFrom(
    '0',
    '-1',
    '1e3',
    '00001',
    '9007199254740991',
    '9007199254740992',
    '99999999999999999999',
    '1.0',
    ' 1',
    '%31',
    '%00',
    '%ZZ',
    '..',
    '%2F',
  ),
  printable.filter((s) => s.length > 0).map((s) => encodeURIComponent(s)),
  anyText.map((s) => encodeURIComponent(s.replace(/[\uD800-\uDFFF]/g, ''))),
);

const query = fc
  .array(
    fc.tuple(
      fc.constantFrom('limit', 'after', 'x', 'limit[]', ''),
      fc.oneof(idLike, fc.constantFrom('', '101', '100', '1', '-5')),
    ),
    { maxLength: 3 },
  )
  .map((kv) => (kv.length ? '?' + kv.map(([k, v]) => `${k}=${v}`).join('&') : ''));

/** Any method on paths near the API's (ids and queries of every kind), without a body. */
export function routeRequest(): fc.Arbitrary<GenRequest> {
  const method = fc.oneof(
    fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE'),
    fc.stringMatching(/^[A-Z]{1,8}$/),
  );
  const path = fc.oneof(
    idLike.map((id) => `/api/accounts/${id}`),
    idLike.map((id) => `/api/transfers/${id}`),
    idLike.map((id) => `/api/accounts/${id}/transfers`),
    fc.constantFrom(
      '/api/accounts',
      '/api/transfers',
      '/',
      '/api',
      '/api/',
      '/api/accounts/',
      '//api/accounts',
      '/healthz',
      '/readyz',
      '/API/ACCOUNTS',
      '*',
    ),
    fc.array(idLike, { maxLength: 4 }).map((segs) => '/' + segs.join('/')),
  );
  return fc.record({ method, path, query, headers: extraHeaders }).map((g) => {
    const bytes = Buffer.from(
      [`${g.method} ${g.path}${g.query} HTTP/1.1`, 'Host: keel', ...g.headers].join(CRLF) +
        CRLF +
        CRLF,
      'latin1',
    );
    return {
      pieces: [bytes],
      short: false,
      label: `${g.method} ${g.path}${g.query} ${JSON.stringify(g.headers)}`,
    };
  });
}

/** Damage at the byte level: bad lines, conflicting lengths, broken chunks, stray bytes. */
export function damagedRequest(): fc.Arbitrary<GenRequest> {
  const good = ['POST /api/accounts HTTP/1.1', 'Host: keel', 'Content-Type: application/json'];
  const body = '{"name":"damaged"}';
  const damage = fc.oneof(
    fc.integer({ min: 1, max: 40_000 }).map((n) => ({
      head: [...good, `X-Big: ${'b'.repeat(n)}`, `Content-Length: ${body.length}`],
      body,
      short: false,
    })),
    fc.constant({
      head: [...good, `Content-Length: ${body.length}`, 'Content-Length: 3'],
      body,
      short: false,
    }),
    fc.constant({
      head: [...good, 'Transfer-Encoding: chunked', `Content-Length: ${body.length}`],
      body: `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
      short: false,
    }),
    fc.constant({
      head: [...good, 'Transfer-Encoding: gzip, chunked'],
      body: `zz\r\n${body}\r\n0\r\n\r\n`,
      short: false,
    }),
    fc.constant({
      head: [...good, 'Transfer-Encoding: chunked'],
      body: `${(body.length + 5).toString(16)}\r\n${body}\r\n0\r\n\r\n`,
      short: true,
    }),
    fc
      .constantFrom(
        'Content-Length: -1',
        'Content-Length: 1x',
        'Content-Length: 99999999999999999999',
        'Content-Length: 18, 18',
      )
      .map((cl) => ({ head: [...good, cl], body, short: false })),
    fc.constantFrom('HTTP/1.0', 'HTTP/2.0', 'HTTP/1.2', 'HTTP/0.9', 'http/1.1', '').map((v) => ({
      head: [
        `POST /api/accounts ${v}`.trimEnd(),
        ...good.slice(1),
        `Content-Length: ${body.length}`,
      ],
      body,
      short: false,
    })),
    fc.uint8Array({ minLength: 1, maxLength: 60 }).map((b) => ({
      head: [
        ...good,
        `X-Bytes: ${Buffer.from(b).toString('latin1')}`,
        `Content-Length: ${body.length}`,
      ],
      body,
      short: false,
    })),
    fc
      .uint8Array({ minLength: 1, maxLength: 80 })
      .map((b) => ({ head: [Buffer.from(b).toString('latin1')], body: '', short: false })),
    fc.constant({
      head: [...good, ' folded: continuation', `Content-Length: ${body.length}`],
      body,
      short: false,
    }),
  );
  return fc.record({ d: damage, lf: fc.boolean() }).map(({ d, lf }) => {
    const eol = lf ? '\n' : CRLF;
    const bytes = Buffer.from(d.head.join(eol) + eol + eol + d.body, 'latin1');
    return {
      pieces: [bytes],
      short: d.short,
      label: JSON.stringify(bytes.toString('latin1').slice(0, 300)),
    };
  });
}
