/**
 * Connection accounting over TLS (sslmode=require). The driver wraps our socket in TLS after
 * SSLRequest and drops every listener on it, and the bytes are encrypted: connections must still
 * be counted open and closed, with the reason inferred from idleness, and never leak.
 */
import postgres from 'postgres';
import { inconsistent, scrapeLoop } from '../support/metrics';
import { psql, type TestPostgres } from '../support/postgres';
import { haveOpenssl, startTlsPostgres } from '../support/tls-postgres';
import { until, untilValue } from '../support/wait';
import { startTestWorker, type TestWorker } from '../support/worker';

let pg: TestPostgres;
let w: TestWorker | undefined;

const maybe = haveOpenssl() ? test : test.skip;

beforeAll(async () => {
  if (haveOpenssl()) pg = await startTlsPostgres();
});

afterAll(async () => {
  await w?.stop();
  await pg?.destroy();
});

// TLS handshakes on a loaded box: a longer wait than the 5 s default.
const waitMs = 8000;

maybe(
  'TLS connections are counted open and closed, by inferred reason, and never leak',
  async () => {
    const url = `${await pg.createDatabase()}?sslmode=require`;
    const database = new URL(url).pathname.slice(1);
    w = await startTestWorker(url, {
      DB_POOL_MAX: '4',
      DB_IDLE_CUTOFF_S: '10',
      DB_IDLE_TIMEOUT_S: '2',
      DB_STATEMENT_TIMEOUT_MS: '1000',
      KEEL_ENABLE_TEST_ROUTES: 'true',
    });
    const stats = w.worker.stats;
    // Asked while a request holds a connection (shorter than the 1 s statement timeout; the boot
    // connections may already have idled out, 2 s, on a loaded box), and asked again until that
    // request's connection is there.
    const held = fetch(`${w.base}/__test/slow?ms=800`).then((r) => r.status);
    const n = await untilValue(
      async () =>
        (
          await psql<{ n: number }>(
            pg.url(),
            `select count(*)::int as n from pg_stat_ssl s join pg_stat_activity a using (pid)
            where a.datname = '${database}' and s.ssl`,
          )
        )[0]!.n,
      (v) => v > 0,
      waitMs,
      'an encrypted session of the worker',
    );
    expect(n).toBeGreaterThan(0); // the worker's connections really are encrypted
    expect(await held).toBe(200);

    await until('boot connections to idle out', () => stats.open === 0, waitMs);
    const before = structuredClone(stats);
    const scraper = scrapeLoop(`${w.base}/metrics`);
    const statuses = await Promise.all(
      Array.from({ length: 4 }, () => fetch(`${w!.base}/__test/slow?ms=200`).then((r) => r.status)),
    );
    expect(statuses).toEqual([200, 200, 200, 200]);
    expect(stats.open).toBe(4);
    expect(stats.idle).toBe(4); // encrypted: never seen busy
    await until('the idle timer to close them', () => stats.open === 0, waitMs);
    const scrapes = await scraper.stop();
    expect(inconsistent(scrapes)).toEqual([]);
    expect(stats.opened - before.opened).toBe(4);
    expect(stats.closed.idle_timeout - before.closed.idle_timeout).toBe(4);

    // Terminated by the server: not counted as one of ours.
    expect((await fetch(`${w.base}/api/accounts?limit=1`)).status).toBe(200);
    const mid = structuredClone(stats);
    const admin = postgres(pg.url(), { max: 1, onnotice: () => undefined });
    const [killed] = await admin<{ n: number }[]>`
    select count(*) filter (where pg_terminate_backend(pid))::int as n from pg_stat_activity
     where datname = ${database} and application_name like 'keel:%'`;
    await admin.end({ timeout: 1 });
    expect(killed!.n).toBeGreaterThan(0);
    await until('the kills to be counted', () => stats.open === mid.open - killed!.n, waitMs);
    const theirs =
      stats.closed.server_closed -
      mid.closed.server_closed +
      (stats.closed.network_error - mid.closed.network_error);
    expect(theirs).toBe(killed!.n);

    expect((await fetch(`${w.base}/api/accounts?limit=1`)).status).toBe(200);
    const open = stats.open;
    const atStop = structuredClone(stats);
    // The pool ends (as the shutdown's last step does): every close from now on is a shutdown one.
    await w.worker.handle.end(2);
    await until('every socket to close', () => stats.open === 0, waitMs);
    expect(stats.closed.shutdown - atStop.closed.shutdown).toBe(open);
    expect([stats.busy, stats.idle]).toEqual([0, 0]);
  },
);
