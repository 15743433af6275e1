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

async function counts(): Promise<string> {
  const [row] = await sql`
    select (select count(*) from accounts) as accounts,
           (select coalesce(sum(balance), 0) from accounts) as total,
           (select count(*) from transfers) as transfers,
           (select count(*) from idempotency_keys) as keys`;
  return JSON.stringify(row);
}

type Outcome = { kind: 'answer'; r: RawResponse } | { kind: 'closed' } | { kind: 'hung' };

/** Writes the pieces (each its own write), then waits for one answer, a close, or HANG_MS. */
async function exchange(req: GenRequest): Promise<Outcome> {
  const c = await rawConnect(ctx.w.worker.port);
  let timer: NodeJS.Timeout | undefined;
  try {
    for (const p of req.pieces) c.write(p);
    const hung = new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), HANG_MS)));
    const r = await Promise.race([c.next(), hung]);
    if (r === 'hung') return { kind: 'hung' };
    return r ? { kind: 'answer', r } : { kind: 'closed' };
  } finally {
    clearTimeout(timer);
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
    if (status >= 400 && (await counts()) !== before) fail('rows changed on a 4xx');
  } else if ((await counts()) !== before) {
    fail('rows changed with no answer');
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
