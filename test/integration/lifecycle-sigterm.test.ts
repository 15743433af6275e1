/**
 * SIGTERM to one PM2 cluster worker that holds 50 slow requests: it stops taking connections at
 * once, finishes all 50, exits 0 within SHUTDOWN_TIMEOUT_MS and leaves no database session.
 */
import { getFresh } from '../support/http';
import { connectionsTo, sessionsOf, sleepingIn, waitGone, workerLogs } from '../support/lifecycle';
import { startWebCluster, type Pm2 } from '../support/pm2';
import { untilValue } from '../support/wait';
import type { TestPostgres } from '../support/postgres';

// The 50 slow requests must all be sleeping at once before the signal: on a loaded two-core
// box opening 50 connections (scram auth, a backend each) can take seconds, so each sleeps
// long enough to overlap the last one's start; the drain deadline is above it.
const SHUTDOWN_TIMEOUT_MS = 6000;
const SLOW_MS = 4000;

let pg: TestPostgres;
let pm2: Pm2;
let url: string;
let port: number;

beforeAll(async () => {
  ({ pg, pm2, url, port } = await startWebCluster(
    {
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      // One connection per slow request, so all 50 sleep at the same time.
      DB_POOL_MAX: '50',
      // The slow requests sleep longer than the default statement timeout allows.
      DB_STATEMENT_TIMEOUT_MS: '10000',
      // ... and their retry budget (which counts from the connection) must cover a slow connect too.
      DB_RETRY_BUDGET_MS: '9000',
      // Its own server: two pools of 50 need room the run's shared server may not have left.
    },
    { pg: { settings: { max_connections: 200 } } },
  ));
});

afterAll(async () => {
  await pm2?.kill();
  await pg?.destroy();
});

test('SIGTERM to a worker with 50 slow requests in flight: all answered, exit 0, no sessions left', async () => {
  const [target, other] = await pm2.list();
  const conns = await connectionsTo(port, target!.pid, 51);
  const probe = conns.pop()!;
  // Settled at once so a failure further up is reported as itself, not as 50 rejections.
  const slow = Promise.all(
    conns.map((c) =>
      c.request(`/__test/slow?ms=${SLOW_MS}`).catch((e: Error) => ({
        status: 0,
        body: e.message,
        headers: {} as Record<string, string>,
      })),
    ),
  );
  // All 50 are inside pg_sleep on the target's own connections before the signal.
  await untilValue(
    () => sleepingIn(url, target!.pm_id, target!.pid),
    (n) => n === 50,
    10000,
    'sleeping',
  );

  const signalled = Date.now();
  process.kill(target!.pid, 'SIGTERM');
  const exited = waitGone([target!.pid], SHUTDOWN_TIMEOUT_MS + 5000);

  // Once it has taken the signal (its first log line), it is not ready, and says so with
  // Connection: close on a socket it already had.
  await untilValue(
    async () =>
      workerLogs(pm2.home).some((l) => l.msg === 'shutdown started' && l.pid === target!.pid),
    (seen) => seen,
    5000,
    'shutdown started',
  );
  const ready = await probe.request('/readyz');
  expect(ready.status).toBe(503);
  expect(JSON.parse(ready.body)).toEqual({ status: 'unavailable', reason: 'shutting_down' });
  expect(ready.headers.connection).toBe('close');

  // New connections now go to the other worker only.
  const fresh = [];
  for (let i = 0; i < 20; i++) fresh.push(await getFresh(`http://127.0.0.1:${port}/__test/whoami`));
  const freshPids = fresh.map((r) => (JSON.parse(r.body) as { pid: number }).pid);
  expect(fresh.map((r) => r.status)).toEqual(Array(20).fill(200));
  expect(new Set(freshPids)).toEqual(new Set([other!.pid]));

  const answers = await slow;
  const exitedAt = await exited;
  const statuses = answers.map((a) => a.status);
  expect(statuses).toEqual(Array(50).fill(200));
  expect(answers.every((a) => (JSON.parse(a.body) as { pid: number }).pid === target!.pid)).toBe(
    true,
  );
  expect(answers.every((a) => a.headers.connection === 'close')).toBe(true);
  expect(exitedAt - signalled).toBeLessThan(SHUTDOWN_TIMEOUT_MS);

  // PM2 saw exit code 0 and started a replacement under the same pm_id.
  const procs = await pm2.waitFor((ps) =>
    ps.some((p) => p.pm_id === target!.pm_id && p.status === 'online' && p.restarts === 1),
  );
  const replaced = procs.find((p) => p.pm_id === target!.pm_id)!;
  expect(replaced.exitCode).toBe(0);
  expect(replaced.pid).not.toBe(target!.pid);
  const done = workerLogs(pm2.home).find(
    (l) => l.msg === 'shutdown complete' && l.pid === target!.pid,
  );
  expect(done).toMatchObject({ reason: 'SIGTERM', code: 0 });

  // Its sessions are gone from the server (the backend ends right after the client's Terminate).
  const left = await untilValue(
    () => sessionsOf(url, target!.pm_id, target!.pid),
    (n) => n === 0,
    5000,
    'sessions',
  );
  expect(left).toBe(0);

  console.log(
    JSON.stringify({
      scenario: 'SIGTERM worker with 50 slow in flight',
      slow: statuses.length,
      statuses: [...new Set(statuses)],
      freshAnsweredBy: [...new Set(freshPids)],
      exitMs: exitedAt - signalled,
      exitCode: replaced.exitCode,
      shutdownLog: done,
    }),
  );
});
