/**
 * Property-based tests of the HTTP surface (fast-check) against a real worker and a real
 * Postgres, through raw sockets so every byte of the framing is the generator's. Whatever is
 * sent, the worker must:
 *  - never answer 5xx (the database is healthy the whole time),
 *  - answer or close within the configured timeouts (never hang),
 *  - give every error the contract's body, with the catalogue's status for its code,
 *  - close the connection (Connection: close) when it answers before the body has arrived,
 *  - store nothing when it answers 4xx (rows counted before and after).
 * The runs are bounded (KEEL_PROPERTY_RUNS, 40 by default) and the seed is in each test's name
 * (KEEL_PROPERTY_SEED replays one).
 */
import fc from 'fast-check';
import postgres from 'postgres';
import { ERRORS } from '../../src/errors';
import { damagedRequest, postRequest, routeRequest, type GenRequest } from '../support/http-gen';
import { rawConnect, type RawResponse } from '../support/raw-http';
import { call, useWorker } from '../support/worker';

const LIMIT_BYTES = 64 * 1024;
// Scaled down from 10 s / 30 s / 10 s; the body limit stays large enough for deep nesting.
const ctx = useWorker({
  BODY_LIMIT: '64kb',
  HEADERS_TIMEOUT_MS: '500',
  REQUEST_RECEIVE_TIMEOUT_MS: '1000',
  REQUEST_TIMEOUT_MS: '2000',
});
// The longest a request may go unanswered: the receive timeout (checked every quarter of the
// shorter timer, so up to 1.25x), then the request deadline and its 1 s settle time, and 3 s for
// a loaded machine. Past this, a request has hung.
const HANG_MS = 1250 + 2000 + 1000 + 3000;

const SEED = Number(process.env.KEEL_PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));
const RUNS = Number(process.env.KEEL_PROPERTY_RUNS ?? 40);

let sql: postgres.Sql;
beforeAll(async () => {
  sql = postgres(ctx.url, { max: 1, onnotice: () => undefined });
  // Two accounts so that generated transfers between small ids sometimes succeed.
  for (const name of ['p1', 'p2']) {
    expect((await call(ctx.base, 'POST', '/api/accounts', { name, balance: 1000 })).status).toBe(
      201,
    );
  }
});
afterAll(() => sql?.end({ timeout: 5 }));

/**
 * What a request may not change unless answered 2xx. A transfer the ledger refuses (404, 409,
 * 422) keeps its key's answer so that a retry reads the same; anything refused before the ledger
 * leaves no key either.
 */
async function counts(): Promise<{ data: string; keys: string }> {
  const [row] = await sql`
    select (select count(*) from accounts) as accounts,
           (select coalesce(sum(balance), 0) from accounts) as total,
           (select count(*) from transfers) as transfers,
           (select count(*) from idempotency_keys) as keys`;
  const { keys, ...data } = row!;
  return { data: JSON.stringify(data), keys: String(keys) };
}

const REMEMBERED = [404, 409, 422];

type Outcome =
  | { kind: 'answer'; r: RawResponse; next: RawResponse | null | 'hung' }
  | { kind: 'closed' }
  | { kind: 'hung' };

function within<T>(p: Promise<T>): Promise<T | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), HANG_MS)));
  return Promise.race([p, hung]).finally(() => clearTimeout(timer));
}

/**
 * Writes the pieces (each its own write, `gapMs` apart), then waits for one answer (past any
 * `100 Continue`), a close, or HANG_MS. A socket the answer kept open must then serve a
 * `GET /healthz`: it was not left half-read.
 */
async function exchange(req: GenRequest): Promise<Outcome> {
  const c = await rawConnect(ctx.w.worker.port);
  try {
    for (const p of req.pieces) {
      c.write(p);
      if (req.gapMs) await new Promise((r) => setTimeout(r, req.gapMs));
    }
    let r = await within(c.next());
    while (r && r !== 'hung' && r.status >= 100 && r.status < 200) r = await within(c.next());
    if (r === 'hung') return { kind: 'hung' };
    if (!r) return { kind: 'closed' };
    if (r.headers.connection === 'close') return { kind: 'answer', r, next: null };
    c.write('GET /healthz HTTP/1.1\r\nHost: keel\r\n\r\n');
    return { kind: 'answer', r, next: await within(c.next()) };
  } finally {
    c.destroy();
  }
}

const CODES = Object.keys(ERRORS);

function jsonOrNull(text: string): { error?: Record<string, unknown> } | null {
  try {
    return JSON.parse(text) as { error?: Record<string, unknown> };
  } catch {
    return null;
  }
}

/** The invariants every answer keeps; throws (with the request's label) when one breaks. */
async function check(req: GenRequest): Promise<void> {
  const before = await counts();
  const out = await exchange(req);
  const where = `\n  request: ${req.label}\n  outcome: ${JSON.stringify(out)}`;
  const fail = (what: string) => {
    throw new Error(what + where);
  };
  if (out.kind === 'hung') fail(`no answer and no close within ${HANG_MS} ms`);
  if (out.kind === 'answer') {
    const { status, headers, body } = out.r;
    if (!(status >= 200 && status < 500)) fail(`status ${status}`);
    if (!/^[\x20-\x7e]{1,128}$/.test(headers['x-request-id'] ?? '')) fail('no X-Request-Id');
    if (status >= 400) {
      const parsed = jsonOrNull(body);
      const e = parsed?.error;
      const code = String(e?.code);
      if (!parsed || !e || Object.keys(parsed).length !== 1) fail('not {"error":{...}}: ' + body);
      if (!CODES.includes(code)) fail(`an unknown code ${code}`);
      if (ERRORS[code as keyof typeof ERRORS].status !== status) fail(`${code} with ${status}`);
      if (typeof e!.message !== 'string' || !e!.message) fail('an error without a message');
      const extra = Object.keys(e!).filter((k) => !['code', 'message', 'details'].includes(k));
      if (extra.length) fail(`unexpected fields ${extra.join(',')}`);
      if (/\bat .+:\d+:\d+|select |insert |postgres:\/\//i.test(body)) fail('a leak in the body');
    }
    if (req.short && headers.connection !== 'close') fail('a short body answered keep-alive');
    const next = out.next;
    if (
      headers.connection !== 'close' &&
      (next === null || next === 'hung' || next.status !== 200)
    ) {
      fail('the socket was kept open but did not serve the next request');
    }
    if (status >= 400) {
      const after = await counts();
      if (after.data !== before.data) fail('rows changed on a 4xx');
      if (after.keys !== before.keys && !REMEMBERED.includes(status)) fail('a key kept on a 4xx');
    }
  } else {
    const after = await counts();
    if (after.data !== before.data || after.keys !== before.keys) fail('rows changed, no answer');
  }
}

const params = { seed: SEED, numRuns: RUNS, endOnFailure: true };

test(`POST bodies of every shape and framing (seed ${SEED})`, async () => {
  await fc.assert(fc.asyncProperty(postRequest(LIMIT_BYTES), check), params);
});

test(`any method on any path near the API's (seed ${SEED})`, async () => {
  await fc.assert(fc.asyncProperty(routeRequest(), check), { ...params, numRuns: RUNS * 2 });
});

test(`requests damaged at the byte level (seed ${SEED})`, async () => {
  await fc.assert(fc.asyncProperty(damagedRequest(), check), params);
});
