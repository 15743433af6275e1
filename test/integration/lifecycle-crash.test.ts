/**
 * Crashes under real PM2: a worker killed with SIGKILL (nothing of ours runs) and a worker that
 * throws an uncaught exception (our handler drains it and exits non-zero). PM2 replaces both;
 * the other worker serves throughout and the ledger stays exact.
 */
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'undici';
import { checkInvariants, seedAccounts } from '../support/ledger';
import { waitGone, workerLogs } from '../support/lifecycle';
import { failures, ledgerOutcome, startLoad, tally, type Sample } from '../support/load';
import { startWebCluster, type Pm2 } from '../support/pm2';
import type { TestPostgres } from '../support/postgres';
import { sleep } from '../support/wait';

const SHUTDOWN_TIMEOUT_MS = 3000;

let pg: TestPostgres;
let pm2: Pm2;
let url: string;
let base: string;
let accounts: number[];
const fresh = new Agent({ pipelining: 0 });

beforeAll(async () => {
  ({ pg, pm2, url, base } = await startWebCluster({
    SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
  }));

  accounts = await seedAccounts(base, 20, 1_000_000);
});

afterAll(async () => {
  await fresh.close();
  await pm2?.kill();
  await pg?.destroy();
});

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await request(`${base}${path}`, {
    dispatcher: fresh,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return {
    status: res.statusCode,
    headers: res.headers,
    body: (await res.body.json()) as Record<string, unknown>,
  };
}

test('kill -9 of a worker under load: PM2 restarts it, only its in-flight requests fail, the ledger is exact', async () => {
  const concurrency = 8;
  // A connection PM2's master handed to the worker just as it died is never answered: the
  // client's own timeout ends it (5 s: answers here take milliseconds).
  const load = startLoad({
    base,
    accounts,
    concurrency,
    maxMs: 30000,
    maxRequests: 100000,
    timeoutMs: 5000,
  });
  await sleep(1500);
  const before = await pm2.list();
  const victim = before.find((p) => p.pm_id === 1)!;
  const killedAt = Date.now();
  process.kill(victim.pid, 'SIGKILL');
  const procs = await pm2.waitFor((ps) =>
    ps.some((p) => p.pm_id === 1 && p.status === 'online' && p.pid !== victim.pid),
  );
  const backAt = Date.now();
  await sleep(1500);
  const samples = await load.stop();

  const failed = failures(samples);
  // A client retries a transfer that got no answer with the same key: exactly once either way.
  const retried: Sample[] = [];
  let replayed = 0;
  for (const s of failed.filter((f) => f.kind === 'transfer')) {
    const res = await post('/api/transfers', s.transfer, { 'idempotency-key': s.key! });
    retried.push({ ...s, status: res.status, error: undefined, transferId: res.body.id as number });
    // Replayed: the dead worker had committed it before it died.
    if (res.headers['idempotent-replayed'] === 'true') replayed += 1;
  }
  const inFlightAtKill = samples.filter((s) => s.start <= killedAt && s.end >= killedAt).length;
  console.log(
    JSON.stringify({
      scenario: 'kill -9 one worker under load',
      sent: samples.length,
      byStatus: tally(samples),
      inFlightAtKill,
      failed: failed.map((f) => ({
        loop: f.loop,
        kind: f.kind,
        conn: f.conn,
        error: f.error,
        start: f.start - killedAt,
        end: f.end - killedAt,
      })),
      retriedStatuses: retried.map((r) => r.status),
      retriedReplayed: replayed,
      restartMs: backAt - killedAt,
      restarts: procs.find((p) => p.pm_id === 1)!.restarts,
    }),
  );

  expect(procs.find((p) => p.pm_id === 1)!.restarts).toBe(victim.restarts + 1);
  // Only requests that were on the killed worker when it died fail: no answer (never a 5xx:
  // the survivor is untouched), at most the one request each client loop had outstanding,
  // and none once PM2 had the replacement online.
  for (const f of failed) {
    expect(f.error).toBeDefined();
    expect(f.start).toBeLessThan(backAt);
  }
  expect(new Set(failed.map((f) => f.loop)).size).toBe(failed.length);
  for (const s of samples.filter((x) => !x.error)) expect([200, 201, 409]).toContain(s.status);
  expect(retried.every((r) => r.status === 201)).toBe(true);
  const outcome = ledgerOutcome([...samples.filter((s) => !s.error), ...retried]);
  await checkInvariants(url, outcome);
});

test('an uncaught exception: the worker drains and exits non-zero, PM2 replaces it, the other keeps serving', async () => {
  const before = await pm2.list();
  const load = startLoad({ base, accounts, concurrency: 6, maxMs: 30000, maxRequests: 100000 });
  await sleep(1000);

  const reqId = `crash-${randomUUID()}`;
  const crash = await post('/__test/crash', {}, { 'x-request-id': reqId });
  expect(crash.status).toBe(202);
  const crashedPid = crash.body.crashing as number;
  const victim = before.find((p) => p.pid === crashedPid)!;
  const survivor = before.find((p) => p.pid !== crashedPid)!;
  const crashedAt = Date.now();

  const exitedAt = await waitGone([crashedPid], SHUTDOWN_TIMEOUT_MS + 5000);
  const procs = await pm2.waitFor((ps) =>
    ps.some((p) => p.pm_id === victim.pm_id && p.status === 'online' && p.pid !== crashedPid),
  );
  const backAt = Date.now();
  await sleep(1000);
  const samples = await load.stop();

  const replaced = procs.find((p) => p.pm_id === victim.pm_id)!;
  const logs = workerLogs(pm2.home).filter((l) => l.pid === crashedPid);
  const crashLine = logs.find((l) => l.msg === 'uncaught exception');
  const done = logs.find((l) => l.msg === 'shutdown complete');
  const failed = failures(samples);
  console.log(
    JSON.stringify({
      scenario: 'uncaught exception in one worker under load',
      sent: samples.length,
      byStatus: tally(samples),
      failed: failed.length,
      exitCode: replaced.exitCode,
      exitMs: exitedAt - crashedAt,
      replacedMs: backAt - crashedAt,
      survivorStillOnline: procs.find((p) => p.pid === survivor.pid)?.status,
      shutdownLog: done,
    }),
  );

  expect(replaced.exitCode).not.toBe(0);
  expect(replaced.exitCode).toBe(1);
  expect(replaced.restarts).toBe(victim.restarts + 1);
  expect(procs.find((p) => p.pid === survivor.pid)?.status).toBe('online');
  // The crash is logged with the request that caused it, then the worker drains.
  expect(crashLine).toMatchObject({ level: 'error', reqId });
  expect(done).toMatchObject({ reason: 'uncaught exception', code: 1 });
  // Nobody noticed: every request before, during and after the crash was answered.
  expect(failed).toEqual([]);
  for (const s of samples) expect([200, 201, 409]).toContain(s.status);
  await checkInvariants(url, ledgerOutcome(samples));
});
