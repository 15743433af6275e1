/**
 * Out of file descriptors (EMFILE) when the pool opens a connection is transient: the connect
 * is retried within the request's budget and the request succeeds once a descriptor is free, or
 * gets a 503 if none frees up in time, never a 500. (postgres.js keeps a query queued and
 * retries the connect itself; a connect error that reaches a query is classified transient in
 * src/db/errors.ts.) This test process's own descriptor limit is lowered (prlimit), used up,
 * and restored.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { psql, startTestPostgres, type TestPostgres } from '../support/postgres';
import { rawConnect, type RawConnection } from '../support/raw-http';
import { waitFor } from '../support/wait';
import { startTestWorker, type TestWorker } from '../support/worker';

let pg: TestPostgres;
let url: string;
let w: TestWorker;
let limit: string;
const held: number[] = [];

beforeAll(async () => {
  pg = await startTestPostgres();
  url = await pg.createDatabase();
  w = await startTestWorker(url, { DB_RETRY_BUDGET_MS: '3000', REQUEST_TIMEOUT_MS: '8000' });
  limit = execFileSync(
    'prlimit',
    ['--pid', String(process.pid), '--nofile', '-o', 'SOFT,HARD', '--raw', '--noheadings'],
    {
      encoding: 'utf8',
    },
  ).trim();
});

afterEach(() => {
  for (let fd = held.pop(); fd !== undefined; fd = held.pop()) fs.closeSync(fd);
});

afterAll(async () => {
  const [soft, hard] = limit.split(/\s+/);
  if (soft && hard)
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${soft}:${hard}`]);
  await w?.stop();
  await pg?.destroy();
});

/** Ends the worker's database sessions, so the next query must open a connection. */
async function dropPool(): Promise<void> {
  await psql(
    url,
    `select pg_terminate_backend(pid) from pg_stat_activity
     where datname = current_database() and application_name like 'keel:%' and pid <> pg_backend_pid()`,
  );
  await waitFor(() => w.worker.stats.open === 0);
}

/** Uses up every free descriptor under a limit a little above what is open now. */
function exhaust(): void {
  const open = fs.readdirSync('/proc/self/fd').length;
  execFileSync('prlimit', [
    '--pid',
    String(process.pid),
    `--nofile=${open + 50}:${limit.split(/\s+/)[1]}`,
  ]);
  for (;;) {
    try {
      held.push(fs.openSync('/dev/null', 'r'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EMFILE') return;
      throw err;
    }
  }
}

async function postAccount(c: RawConnection, name: string) {
  const body = JSON.stringify({ name });
  c.write(
    `POST /api/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  return c.next();
}

const failedEmfile = () =>
  w.logs.some((l) => l.msg === 'db connection closed' && l.error === 'EMFILE');

test('EMFILE on connect: retried, and the request succeeds once a descriptor frees up', async () => {
  const c = await rawConnect(w.worker.port); // the client's socket is open before the shortage
  await dropPool();
  exhaust();
  const answer = postAccount(c, 'fd');
  // The driver keeps the query queued and reconnects; once a connect has failed with EMFILE,
  // descriptors free up again.
  await waitFor(failedEmfile);
  for (let fd = held.pop(); fd !== undefined; fd = held.pop()) fs.closeSync(fd);
  const r = await answer;
  c.destroy();
  expect(r?.status).toBe(201);
  expect(
    (await psql<{ name: string }>(url, 'select name from accounts')).map((x) => x.name),
  ).toEqual(['fd']);
});

test('no descriptor all through the budget: 503 database_unavailable, nothing written', async () => {
  w.logs.length = 0;
  const c = await rawConnect(w.worker.port);
  await dropPool();
  exhaust();
  const r = await postAccount(c, 'never');
  for (let fd = held.pop(); fd !== undefined; fd = held.pop()) fs.closeSync(fd);
  c.destroy();
  expect(r?.status).toBe(503);
  expect(JSON.parse(r!.body).error.code).toBe('database_unavailable');
  expect(r!.headers['retry-after']).toMatch(/^\d+$/);
  expect(failedEmfile()).toBe(true);
  expect(
    (await psql<{ name: string }>(url, 'select name from accounts')).map((x) => x.name),
  ).toEqual(['fd']);
});
