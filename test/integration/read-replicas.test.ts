/**
 * Reads from a standby with read-your-writes (DATABASE_READ_URL, contract v1.2 "Consistency
 * across replicas") on real streaming replication: a client that presents its Consistency-Token
 * sees its write every time, also while the standby's replay is paused (the read waits, then goes
 * to the primary); a client without one may see the standby's older state, never older than the
 * lag bound; a standby stopped under load costs no failed read; a promoted standby leaves the
 * read set. Two workers on the same pair: one with a generous lag bound (the standby stays in the
 * read set while paused), one with a tight bound.
 */
import { parseStrict } from '../support/exposition-check';
import { parseExposition, valueOf } from '../support/metrics';
import { diagnoseJson } from '../support/diagnose';
import { freePort, psql } from '../support/postgres';
import { startReplicationPair, type ReplicationPair } from '../support/replication';
import { startTestWorker, type TestWorker } from '../support/worker';
import { until } from '../support/wait';

const DB = 'keel_reads';
let pair: ReplicationPair;
/** A lag bound far above the test's length: a paused standby stays in the read set. */
let loose: TestWorker;
/** A tight lag bound: a paused standby leaves the read set once the primary moves on. */
let tight: TestWorker;

beforeAll(async () => {
  pair = await startReplicationPair({ database: DB });
  const env = (maxLagMs: number) => ({
    DATABASE_READ_URL: pair.standby.url(DB),
    DB_READ_MAX_LAG_MS: String(maxLagMs),
    DB_READ_WAIT_MS: '200',
  });
  loose = await startTestWorker(pair.primary.url(DB), env(600000));
  tight = await startTestWorker(pair.primary.url(DB), env(1000));
});

afterAll(async () => {
  try {
    await loose?.stop();
    await tight?.stop();
  } finally {
    await pair?.destroy();
  }
});

interface Answer {
  status: number;
  token: string | null;
  body: any;
}

async function req(
  w: TestWorker,
  method: string,
  path: string,
  opts: { body?: unknown; token?: string | null; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (opts.token) headers['consistency-token'] = opts.token;
  const res = await fetch(w.base + path, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  return {
    status: res.status,
    token: res.headers.get('consistency-token'),
    body: text ? JSON.parse(text) : undefined,
  };
}

const standbySql = (q: string) => psql(pair.standby.url(), q);
/** Replay paused for real: a pause is only requested until the standby meets its next record. */
async function pause(): Promise<void> {
  await standbySql('select pg_wal_replay_pause()');
  await until(
    'replay paused',
    async () => {
      await psql(pair.primary.url(), 'select txid_current()');
      const [row] = await standbySql('select pg_get_wal_replay_pause_state() as s');
      return row!.s === 'paused';
    },
    10000,
  );
}
const resume = () => standbySql('select pg_wal_replay_resume()');

async function newAccount(w: TestWorker, balance = 100): Promise<{ id: number; token: string }> {
  const a = await req(w, 'POST', '/api/accounts', { body: { name: 'reader', balance } });
  expect(a.status).toBe(201);
  expect(a.token).toMatch(/^[\x20-\x7e]{1,200}$/);
  return { id: a.body.id, token: a.token! };
}

/** A write, then every read of it with the write's token: each must reflect the write. */
async function writeThenRead(w: TestWorker): Promise<void> {
  const from = await newAccount(w, 500);
  const got = await req(w, 'GET', `/api/accounts/${from.id}`, { token: from.token });
  expect(got).toMatchObject({ status: 200, body: { id: from.id, balance: 500 } });
  const to = await newAccount(w, 0);
  const t = await req(w, 'POST', '/api/transfers', {
    body: { from: from.id, to: to.id, amount: 70 },
  });
  expect(t.status).toBe(201);
  expect(t.token).not.toBeNull();
  // The client's writes on different connections: both tokens, joined by ", ".
  const both = `${to.token}, ${t.token}`;
  const transfer = await req(w, 'GET', `/api/transfers/${t.body.id}`, { token: t.token });
  expect(transfer).toMatchObject({ status: 200, body: { id: t.body.id, amount: 70 } });
  const balance = await req(w, 'GET', `/api/accounts/${from.id}`, { token: t.token });
  expect(balance).toMatchObject({ status: 200, body: { balance: 430 } });
  const page = await req(w, 'GET', `/api/accounts/${to.id}/transfers`, { token: both });
  expect(page.status).toBe(200);
  expect(page.body.items.map((x: { id: number }) => x.id)).toContain(t.body.id);
  // A GET's own token chains: a read that passes it back sees at least that state.
  expect(page.token).not.toBeNull();
  const chained = await req(w, 'GET', `/api/accounts/${to.id}`, { token: page.token });
  expect(chained).toMatchObject({ status: 200, body: { balance: 70 } });
}

async function metric(w: TestWorker, name: string, labels: Record<string, string> = {}) {
  const text = await (await fetch(`${w.base}/metrics`)).text();
  return valueOf(parseExposition(text), name, labels) ?? 0;
}
const inReadSet = async (w: TestWorker) =>
  (await metric(w, 'keel_db_standby_in_read_set', {
    standby: `127.0.0.1:${pair.standby.port}`,
  })) === 1;

/** Whether a fresh account, read right after without a token, is missing (the standby served). */
async function standbyServesStaleRead(w: TestWorker): Promise<boolean> {
  const { id } = await newAccount(w);
  return (await req(w, 'GET', `/api/accounts/${id}`)).status === 404;
}

test('a token the server cannot parse is refused 400 invalid_request; a GET answer carries a token', async () => {
  for (const bad of ['nope', 'a'.repeat(201), `${(await newAccount(loose)).token}, x`]) {
    const res = await req(loose, 'GET', '/api/accounts', { token: bad });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
  }
  const list = await req(loose, 'GET', '/api/accounts?limit=1');
  expect(list.status).toBe(200);
  expect(list.token).not.toBeNull();
});

test('replay paused: a client without a token may see the standby state, one with its token sees its writes every time', async () => {
  await pause();
  try {
    // The standby joins the read set at the worker's first check: then a token-less read of an
    // account created just now finds the standby's older state.
    await until(
      'a token-less read served by the paused standby',
      () => standbyServesStaleRead(loose),
      15000,
    );
    for (let i = 0; i < 5; i++) await writeThenRead(loose);
    // The standby still serves token-less reads (it never failed): the token made the difference.
    expect(await standbyServesStaleRead(loose)).toBe(true);
    expect(await metric(loose, 'keel_db_reads_total', { target: 'fallback' })).toBeGreaterThan(0);
    expect(
      await metric(loose, 'keel_db_read_token_waits_total', { outcome: 'timeout' }),
    ).toBeGreaterThan(0);
  } finally {
    await resume();
  }
  // Replaying again: tokens are served once the standby has replayed them (or by the primary).
  for (let i = 0; i < 10; i++) await writeThenRead(loose);
});

test('a standby further behind than the lag bound leaves the read set, and comes back', async () => {
  await until("the standby in the tight worker's read set", () => inReadSet(tight), 15000);
  expect(await metric(tight, 'keel_db_read_lag_bound_seconds')).toBe(1);
  const before = await metric(tight, 'keel_db_reads_total', { target: 'standby' });
  for (let i = 0; i < 5; i++)
    expect((await req(tight, 'GET', '/api/accounts?limit=5')).status).toBe(200);
  expect(await metric(tight, 'keel_db_reads_total', { target: 'standby' })).toBeGreaterThan(before);
  await pause();
  try {
    // The primary moves on (these writes); the paused standby falls behind the 1 s bound, and
    // then every token-less read of a fresh write is answered by the primary.
    await until(
      'the paused standby out of the read set',
      async () => {
        await newAccount(tight);
        return !(await inReadSet(tight));
      },
      15000,
    );
    for (let i = 0; i < 20; i++) expect(await standbyServesStaleRead(tight)).toBe(false);
    expect(
      await metric(tight, 'keel_db_standby_lag_seconds', {
        standby: `127.0.0.1:${pair.standby.port}`,
      }),
    ).toBeGreaterThan(1);
  } finally {
    await resume();
  }
  await until('the standby back in the read set', () => inReadSet(tight), 15000);
});

test('keel diagnose checks each read host: the standby ok, a host that does not answer a warning', async () => {
  const u = new URL(pair.standby.url(DB));
  const down = await freePort();
  const run = await diagnoseJson(
    {
      WEB_CONCURRENCY: '1',
      DB_POOL_MAX: '2',
      DATABASE_URL: pair.primary.url(DB),
      DATABASE_READ_URL: `postgres://${u.username}:${u.password}@127.0.0.1:${pair.standby.port},127.0.0.1:${down}/${DB}`,
    },
    ['--round-trips', '3'],
  );
  const reads = run.report.checks.filter((c) => c.id === 'replication.read_host');
  expect(reads.map((c) => [c.status, c.value, c.data.host])).toEqual([
    ['ok', 'standby', `127.0.0.1:${pair.standby.port}`],
    ['warn', 'unreachable', `127.0.0.1:${down}`],
  ]);
  expect(reads[0]!.summary).toMatch(/WAL receiver streaming, replayed to [0-9A-F]+\/[0-9A-F]+/);
  expect(run.stdout).not.toContain(u.password);
});

test('a standby stopped under read load costs no failed read', async () => {
  const accounts = await Promise.all([newAccount(loose, 1000), newAccount(loose, 1000)]);
  let stop = false;
  const failures: string[] = [];
  let reads = 0;
  const reader = async (withToken: boolean) => {
    while (!stop) {
      const a = accounts[reads % 2]!;
      const res = await req(loose, 'GET', `/api/accounts/${a.id}`, {
        token: withToken ? a.token : null,
      });
      reads += 1;
      // Without a token a read may reflect the standby's older state (404 for an account it has
      // not replayed yet); a failed read is anything else, and with a token anything but 200.
      const ok = res.status === 200 || (!withToken && res.status === 404);
      if (!ok) failures.push(`${res.status} ${JSON.stringify(res.body)}`);
    }
  };
  const readers = [reader(true), reader(false), reader(true), reader(false)];
  try {
    await until('reads flowing', () => reads > 50, 15000);
    const onStandby = await metric(loose, 'keel_db_reads_total', { target: 'standby' });
    await until(
      'reads served by the standby',
      async () => (await metric(loose, 'keel_db_reads_total', { target: 'standby' })) > onStandby,
      15000,
    );
    await pair.standby.stop('immediate');
    const atStop = reads;
    await until('reads flowing after the standby stopped', () => reads > atStop + 200, 30000);
    // Readiness is the primary's alone.
    expect((await fetch(`${loose.base}/readyz`)).status).toBe(200);
    expect(await inReadSet(loose)).toBe(false);
    await pair.standby.start();
    await pair.streaming();
    const atStart = reads;
    await until('reads flowing after the standby came back', () => reads > atStart + 200, 30000);
  } finally {
    stop = true;
    await Promise.all(readers);
  }
  expect(failures).toEqual([]);
  // Back in the read set.
  await pause();
  try {
    await until('the restarted standby serving reads', () => standbyServesStaleRead(loose), 20000);
  } finally {
    await resume();
  }
});

test('a promoted standby leaves the read set', async () => {
  await pair.standby.promote();
  // Within a check or two, no token-less read goes to the promoted server, which no longer
  // receives the primary's writes.
  await until(
    'reads off the promoted standby',
    async () => !(await standbyServesStaleRead(loose)),
    15000,
  );
  for (let i = 0; i < 20; i++) expect(await standbyServesStaleRead(loose)).toBe(false);
  // Its lag reads +Inf, in a scrape a strict parser takes.
  const samples = parseStrict(await (await fetch(`${loose.base}/metrics`)).text());
  const lag = samples.find(
    (x) =>
      x.name === 'keel_db_standby_lag_seconds' &&
      x.labels.standby === `127.0.0.1:${pair.standby.port}`,
  );
  expect(lag?.raw).toBe('+Inf');
  // And every read still answers.
  await writeThenRead(loose);
});
