/**
 * Connection accounting under injected faults: every close is counted under the reason that was
 * injected, retries are counted, and /metrics, scraped again and again during the load, always
 * has busy + idle == open. Time is scaled down (idle timeouts of 1 s, cuts after 500 ms).
 */
import postgres from 'postgres';
import { FAULT_POOL } from '../support/faults';
import { CLOSE_REASONS, type CloseReason, type DbStats } from '../../src/metrics/db-stats';
import { type CloseHow } from '../support/fault-proxy';
import { checkInvariants, runLoad, type LoadResult } from '../support/ledger';
import { inconsistent, scrapeLoop } from '../support/metrics';
import { sleep, until } from '../support/wait';
import { startFaultWorker, useFaultFixture } from '../support/fault-worker';

const fx = useFaultFixture();

const POOL = FAULT_POOL;

async function setup(env: Record<string, string>, viaProxy = false) {
  const started = await startFaultWorker(fx, env, viaProxy);
  return { ...started, database: new URL(started.url).pathname.slice(1) };
}

/** What changed in the counters since `before`. */
function closedSince(before: DbStats['closed'], stats: DbStats): Record<CloseReason, number> {
  const out = { ...stats.closed };
  for (const k of Object.keys(out) as CloseReason[]) out[k] -= before[k];
  return out;
}

function only(reason: CloseReason, n: number): Record<CloseReason, number> {
  const all = Object.fromEntries(CLOSE_REASONS.map((r) => [r, 0])) as Record<CloseReason, number>;
  all[reason] = n;
  return all;
}

/** Opens `n` connections at once: `n` concurrent reads that each hold one for 200 ms. */
async function openConnections(base: string, n: number): Promise<void> {
  const results = await Promise.all(
    Array.from({ length: n }, () => fetch(`${base}/__test/slow?ms=200`).then((r) => r.status)),
  );
  expect(results).toEqual(Array.from({ length: n }, () => 200));
}

/** Only answers the ledger allows: no 5xx, no wrong 404, no transport error. */
function noFailures(load: LoadResult): void {
  const bad = Object.keys(load.byStatus).filter((s) => !['200', '201', '409'].includes(s));
  expect(bad).toEqual([]);
  expect(load.errors).toEqual([]);
}

/** pg_terminate_backend on the database's Keel backends every `everyMs`, over a direct connection. */
function terminateLoop(database: string, everyMs: number) {
  const sql = postgres(fx.pg.url(), {
    max: 1,
    onnotice: () => undefined,
    connection: { application_name: 'test-terminator' },
  });
  let killed = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const [row] = await sql<{ n: number }[]>`
        select count(*) filter (where pg_terminate_backend(pid))::int as n
          from pg_stat_activity
         where datname = ${database} and application_name like 'keel:%'`;
      killed += row?.n ?? 0;
      await sleep(everyMs);
    }
  })();
  return {
    killed: () => killed,
    async stop(): Promise<number> {
      running = false;
      await loop;
      await sql.end({ timeout: 1 });
      return killed;
    },
  };
}

test('terminate-loop: every kill is one server_closed close, retries are counted, gauges agree at every scrape', async () => {
  const { url, ids, w, database } = await setup({});
  const before = structuredClone(w.worker.stats);
  const scraper = scrapeLoop(`${w.base}/metrics`);
  const killer = terminateLoop(database, 500);
  const stats = w.worker.stats;
  // The load runs until what the test counts has happened (at most the 4 s it used to run for).
  const load = await runLoad({
    base: w.base,
    accounts: ids,
    durationMs: 4000,
    concurrency: 8,
    until: () =>
      killer.killed() > 3 &&
      scraper.count() > 30 &&
      stats.retries > before.retries &&
      stats.queries.connection > before.queries.connection &&
      stats.retryOutcomes.recovered > before.retryOutcomes.recovered,
  });
  const killed = await killer.stop();
  const scrapes = await scraper.stop();
  await until(
    'every kill to be counted',
    () => stats.closed.server_closed - before.closed.server_closed >= killed,
  );

  expect(killed).toBeGreaterThan(3);
  expect(closedSince(before.closed, stats)).toEqual(only('server_closed', killed));
  const closes = w.logs.filter(
    (l) => l.msg === 'db connection closed' && l.reason === 'server_closed',
  );
  expect(closes).toHaveLength(killed);
  // The close line says why: the server's own FATAL error.
  expect(closes.every((l) => l.serverCode === '57P01')).toBe(true);

  // Requests that hit a dying connection were retried, and the retries are in the counters
  // and in the log (one line each, with the request id).
  noFailures(load);
  const retries = stats.retries - before.retries;
  expect(retries).toBeGreaterThan(0);
  expect(stats.queries.connection - before.queries.connection).toBeGreaterThan(0);
  expect(stats.retryOutcomes.recovered - before.retryOutcomes.recovered).toBeGreaterThan(0);
  const retryLines = w.logs.filter((l) => l.msg === 'db retry');
  expect(retryLines).toHaveLength(retries);
  expect(retryLines.every((l) => typeof l.reqId === 'string')).toBe(true);

  // Nothing leaks: what was opened is closed or still open.
  const opened = stats.opened - before.opened;
  const closed = Object.values(closedSince(before.closed, stats)).reduce((a, b) => a + b, 0);
  expect(opened - closed).toBe(stats.open - before.open);
  expect(scrapes.length).toBeGreaterThan(30);
  expect(inconsistent(scrapes)).toEqual([]);
  expect(Math.max(...scrapes.map((s) => s.busy))).toBeGreaterThan(0);
  expect(Math.max(...scrapes.map((s) => s.open))).toBeLessThanOrEqual(POOL);
  process.stderr.write(
    `metrics terminate-loop: killed=${killed} retries=${retries} sent=${load.sent} scrapes=${scrapes.length} statuses=${JSON.stringify(load.byStatus)}\n`,
  );
  await checkInvariants(url, load);
});

test.each<[CloseHow, CloseReason]>([
  ['fin', 'server_closed'],
  ['rst', 'network_error'],
])('idle-cut (%s): every cut is counted as %s', async (how, reason) => {
  // Keel believes the cutoff is 10 s (idle timer 5-7 s); the proxy really cuts after 500 ms.
  const { w } = await setup({ DB_IDLE_CUTOFF_S: '10', KEEL_ENABLE_TEST_ROUTES: 'true' }, true);
  fx.proxy!.setIdleCut(500, how);
  await until('seed connections to be cut', () => w.worker.stats.open === 0);
  const before = structuredClone(w.worker.stats);
  const cutsBefore = fx.proxy!.stats().idleCuts;

  const scraper = scrapeLoop(`${w.base}/metrics`);
  await openConnections(w.base, POOL);
  expect(w.worker.stats.open).toBe(POOL);
  await until('the proxy to cut them all', () => w.worker.stats.open === 0);
  const scrapes = await scraper.stop();

  const cuts = fx.proxy!.stats().idleCuts - cutsBefore;
  expect(cuts).toBe(POOL);
  expect(closedSince(before.closed, w.worker.stats)).toEqual(only(reason, cuts));
  expect(inconsistent(scrapes)).toEqual([]);
  // The pool reconnects on demand.
  expect((await fetch(`${w.base}/api/accounts?limit=1`)).status).toBe(200);
});

test('idle timeout: connections Keel closes for idleness are counted as idle_timeout', async () => {
  const { w } = await setup({
    DB_IDLE_CUTOFF_S: '10',
    DB_IDLE_TIMEOUT_S: '1',
    KEEL_ENABLE_TEST_ROUTES: 'true',
  });
  await until('seed connections to idle out', () => w.worker.stats.open === 0);
  const before = structuredClone(w.worker.stats);
  const scraper = scrapeLoop(`${w.base}/metrics`);
  await openConnections(w.base, POOL);
  await until('the idle timer to close them', () => w.worker.stats.open === 0);
  const scrapes = await scraper.stop();
  expect(w.worker.stats.opened - before.opened).toBe(POOL);
  expect(closedSince(before.closed, w.worker.stats)).toEqual(only('idle_timeout', POOL));
  expect(inconsistent(scrapes)).toEqual([]);
  const lines = w.logs.filter((l) => l.msg === 'db connection closed').slice(-POOL);
  expect(lines.map((l) => l.reason)).toEqual(Array.from({ length: POOL }, () => 'idle_timeout'));
});

test('max lifetime: connections replaced for age, even busy ones, are counted as max_lifetime', async () => {
  const { ids, w } = await setup({
    DB_IDLE_CUTOFF_S: '10',
    DB_IDLE_TIMEOUT_S: '0',
    DB_MAX_LIFETIME_S: '1',
  });
  const before = structuredClone(w.worker.stats);
  const scraper = scrapeLoop(`${w.base}/metrics`);
  // Until every connection of the pool has been replaced for its age (at most the 3 s it used to
  // run for; lifetimes of 1 s).
  const load = await runLoad({
    base: w.base,
    accounts: ids,
    durationMs: 3000,
    concurrency: 4,
    until: () => w.worker.stats.closed.max_lifetime - before.closed.max_lifetime >= POOL,
  });
  const scrapes = await scraper.stop();
  noFailures(load);
  const closed = closedSince(before.closed, w.worker.stats);
  expect(closed.max_lifetime).toBeGreaterThanOrEqual(POOL);
  expect(closed).toEqual(only('max_lifetime', closed.max_lifetime));
  expect(inconsistent(scrapes)).toEqual([]);
});

test('a stalled connection is destroyed and counted as stalled; shutdown closes count as shutdown', async () => {
  // Statement timeout 500 ms: a connection silent for 1.5 s with a query outstanding is stalled
  // (once the path is known to answer without it).
  const { w: tw } = await setup(
    { DB_STATEMENT_TIMEOUT_MS: '500', DB_RETRY_BUDGET_MS: '1000', KEEL_ENABLE_TEST_ROUTES: 'true' },
    true,
  );
  const stats = tw.worker.stats;
  await openConnections(tw.base, 1);
  const before = structuredClone(stats);
  fx.proxy!.setMode('blackhole');
  const res = await fetch(`${tw.base}/api/accounts?limit=1`);
  expect(res.status).toBe(503);
  // Nothing is destroyed while the whole path is stalled (a replacement would wait in the same
  // hole); once it answers again, the connection whose bytes the blackhole lost is given up.
  fx.proxy!.setMode('pass');
  const healed = Date.now();
  await until(
    'the stalled connection to be destroyed',
    () => stats.closed.stalled > before.closed.stalled,
  );
  expect(Date.now() - healed).toBeLessThan(3000);
  const stalled = stats.closed.stalled - before.closed.stalled;
  expect(closedSince(before.closed, stats)).toEqual(only('stalled', stalled));
  expect(tw.logs.some((l) => l.msg === 'db connection stalled, destroying it')).toBe(true);
  expect((await fetch(`${tw.base}/api/accounts?limit=1`)).status).toBe(200);

  const atStop = structuredClone(stats);
  expect(atStop.open).toBeGreaterThan(0);
  fx.w = undefined;
  await tw.stop();
  await until('every socket to close', () => stats.open === 0);
  expect([stats.busy, stats.idle]).toEqual([0, 0]);
  // Sockets still stuck from the blackhole may stall before the pool ends; all others: shutdown.
  const closed = closedSince(atStop.closed, stats);
  expect(closed.shutdown + closed.stalled).toBe(atStop.open);
  expect(closed.shutdown).toBeGreaterThan(0);
});
