/**
 * Connection resilience under injected faults, with scaled-down time (an idle cutoff of 2 s
 * stands in for Railway's 300 s). Each scenario runs concurrent reads and keyed transfers, then
 * checks the ledger invariants in the database.
 */
import { connectionSampler, FAULT_POOL, restartFor, terminateLoop } from '../support/faults';
import { holds, sleep } from '../support/wait';
import { checkInvariants, mergeLoads, runLoad, type LoadResult } from '../support/ledger';
import { psql } from '../support/postgres';
import { startFaultWorker, useFaultFixture } from '../support/fault-worker';

const fx = useFaultFixture();

const POOL = FAULT_POOL;

function only2xx(load: LoadResult): void {
  const bad = Object.entries(load.byStatus).filter(([s]) => !['200', '201', '409'].includes(s));
  expect(load.unexpected).toEqual([]);
  expect(bad).toEqual([]);
  expect(load.errors).toEqual([]);
}

function summary(name: string, load: LoadResult, extra: Record<string, unknown> = {}): void {
  // One line per scenario for the issue note: sent, statuses, longest request.
  process.stderr.write(
    `resilience ${name}: sent=${load.sent} statuses=${JSON.stringify(load.byStatus)} longestMs=${load.longestMs} ${JSON.stringify(extra)}\n`,
  );
}

const setup = (env: Record<string, string>, viaProxy: boolean) =>
  startFaultWorker(fx, env, viaProxy);

/** Three 700 ms bursts of load, each followed by idleness until `idle()` holds (at most `idleMs`). */
async function bursts(
  base: string,
  ids: number[],
  idle: () => boolean,
  idleMs: number,
): Promise<LoadResult> {
  const loads: LoadResult[] = [];
  for (let burst = 0; burst < 3; burst++) {
    loads.push(await runLoad({ base, accounts: ids, durationMs: 700, concurrency: 8 }));
    await holds(idle, idleMs);
  }
  return mergeLoads(loads);
}

test('idle-cut: a proxy that cuts idle connections after 2 s never reaches a client', async () => {
  const { url, ids, w } = await setup({ DB_IDLE_CUTOFF_S: '2' }, true);
  fx.proxy!.setIdleCut(2000, 'fin');
  // Idle until Keel has closed every connection itself (its idle timer: 50-70 % of the 2 s
  // cutoff); should it not, the proxy's cut comes first and the assertions below fail.
  const all = await bursts(w.base, ids, () => w.worker.stats.open === 0, 3000);
  summary('idle-cut', all, {
    proxyCuts: fx.proxy!.stats().idleCuts,
    closed: w.worker.stats.closed,
  });
  only2xx(all);
  // Keel's own timers closed every connection before the proxy could.
  expect(fx.proxy!.stats().idleCuts).toBe(0);
  expect(w.worker.stats.closed.idle_timeout + w.worker.stats.closed.max_lifetime).toBeGreaterThan(
    0,
  );
  expect(w.worker.stats.closed.server_closed + w.worker.stats.closed.network_error).toBe(0);
  await checkInvariants(url, all);
});

test('idle-cut with the idle timer disabled: the retry layer absorbs what the timer missed', async () => {
  // Keel is told the cutoff is 10 s (so its lifetime is 8-9.5 s) and its idle timer is off,
  // while the proxy really cuts after 1 s of idleness.
  const { url, ids, w } = await setup({ DB_IDLE_CUTOFF_S: '10', DB_IDLE_TIMEOUT_S: '0' }, true);
  fx.proxy!.setIdleCut(1000, 'rst');
  // Idle until the proxy has cut every connection (1 s of idleness each).
  const all = await bursts(w.base, ids, () => fx.proxy!.connections() === 0, 1600);
  summary('idle-cut-no-timer', all, {
    proxyCuts: fx.proxy!.stats().idleCuts,
    closed: w.worker.stats.closed,
    retries: w.worker.stats.retries,
  });
  only2xx(all);
  expect(fx.proxy!.stats().idleCuts).toBeGreaterThan(0);
  expect(w.worker.stats.closed.idle_timeout).toBe(0);
  expect(w.worker.stats.closed.network_error + w.worker.stats.closed.server_closed).toBeGreaterThan(
    0,
  );
  await checkInvariants(url, all);
});

test('terminate-loop: every Keel backend killed every 500 ms, clients see only answers', async () => {
  const { url, ids, w } = await setup({}, false);
  const sampler = connectionSampler(fx.pg.url());
  const killer = terminateLoop(fx.pg.url(), 500);
  const load = await runLoad({ base: w.base, accounts: ids, durationMs: 5000, concurrency: 12 });
  const killed = await killer.stop();
  const maxConns = await sampler.stop();
  summary('terminate-loop', load, { killed, retries: w.worker.stats.retries, maxConns });
  expect(killed).toBeGreaterThan(5);
  only2xx(load);
  // The connection budget holds under the fault: never more than the pool's max.
  expect(maxConns).toBeLessThanOrEqual(POOL);
  await checkInvariants(url, load);
});

test('restart: Postgres down for 3 s is absorbed by the default budget', async () => {
  const { url, ids, w } = await setup({}, false);
  const started = Date.now();
  const loadP = runLoad({ base: w.base, accounts: ids, durationMs: 7000, concurrency: 8 });
  await sleep(1500);
  await restartFor(fx.pg, 3000);
  const upAt = Date.now() - started;
  const load = await loadP;
  const back = firstOkAfter(load, upAt);
  summary('restart', load, { backAfterMs: back });
  only2xx(load);
  // No request outlives its deadline, and requests are answered 2xx within 1 s of the restart.
  expect(load.longestMs).toBeLessThan(8000);
  expect(back).toBeLessThan(1000);
  await checkInvariants(url, load);
});

test('restart longer than the budget: 2xx or 503 with Retry-After, and back within 1 s', async () => {
  const { url, ids, w } = await setup(
    { DB_RETRY_BUDGET_MS: '1000', REQUEST_TIMEOUT_MS: '3000' },
    false,
  );
  const started = Date.now();
  const loadP = runLoad({
    base: w.base,
    accounts: ids,
    durationMs: 8000,
    concurrency: 8,
    keyless: true,
  });
  await sleep(1500);
  await restartFor(fx.pg, 3000);
  const upAt = Date.now() - started;
  const load = await loadP;
  const back = firstOkAfter(load, upAt);
  summary('restart-short-budget', load, { backAfterMs: back });
  expect(Object.keys(load.byStatus).every((s) => ['200', '201', '409', '503'].includes(s))).toBe(
    true,
  );
  expect(load.byStatus['503']).toBeGreaterThan(0);
  expect(load.errors).toEqual([]);
  expect(load.longestMs).toBeLessThan(3000 + 500);
  expect(back).toBeLessThan(1000);
  await checkInvariants(url, load);
});

test('blackhole 5 s: no request outlives its deadline; full recovery within 1 s', async () => {
  const { url, ids, w } = await setup(
    { DB_RETRY_BUDGET_MS: '2000', REQUEST_TIMEOUT_MS: '3000' },
    true,
  );
  const started = Date.now();
  const loadP = runLoad({
    base: w.base,
    accounts: ids,
    durationMs: 10000,
    concurrency: 8,
    keyless: true,
  });
  await sleep(1500);
  fx.proxy!.setMode('blackhole');
  const stalledAt = Date.now();
  // Readiness and liveness probes during the stall, one at a time, as a balancer would.
  const probes: Array<{ at: number; end: number; path: string; status: number }> = [];
  let probing = true;
  const prober = (async () => {
    while (probing) {
      for (const path of ['/readyz', '/healthz']) {
        const at = Date.now();
        const status = await fetch(`${w.base}${path}`).then(
          (r) => r.status,
          () => 0,
        );
        probes.push({ at, end: Date.now(), path, status });
      }
      await sleep(100);
    }
  })();
  await sleep(5000);
  probing = false;
  await prober;
  fx.proxy!.setMode('pass');
  const resumedAt = Date.now() - started;
  let ready = 0;
  // Bounded: 50 probes.
  for (let i = 0; i < 50 && ready !== 200; i++) {
    ready = await fetch(`${w.base}/readyz`).then(
      (r) => r.status,
      () => 0,
    );
    if (ready !== 200) await sleep(100);
  }
  const load = await loadP;
  const readyz = probes.filter((p) => p.path === '/readyz');
  const firstUnready = readyz.find((p) => p.status === 503);
  const tail = load.timeline.filter((t) => t.at > resumedAt + 1000);
  summary('blackhole', load, {
    stalled: w.worker.stats.closed.stalled,
    backAfterMs: firstOkAfter(load, resumedAt),
    // When the first 503 answer arrived, counted from the start of the stall.
    readyz503AfterMs: firstUnready ? firstUnready.end - stalledAt : null,
  });
  const late = tail.filter((t) => t.status !== 200 && t.status !== 201 && t.status !== 409);
  if (late.length > 0) {
    // What the worker said from the heal on, but the 2xx access lines: why a request failed.
    const healEpoch = started + resumedAt;
    process.stderr.write(
      `blackhole: late failures ${JSON.stringify(late)} (heal at ${resumedAt} ms)\n` +
        w.rawLogs
          .filter((l) => {
            const rec = JSON.parse(l) as { time?: string; status?: number };
            const at = Date.parse(rec.time ?? '');
            return at >= healEpoch - 2000 && !(rec.status && rec.status < 300);
          })
          .map((l) => `  ${l}\n`)
          .join(''),
    );
  }
  // The stall is told at once: /readyz turns 503 and stays so; /healthz never touches the database.
  expect(firstUnready).toBeDefined();
  expect(readyz.filter((p) => p.at > firstUnready!.at).every((p) => p.status === 503)).toBe(true);
  expect(probes.filter((p) => p.path === '/healthz').every((p) => p.status === 200)).toBe(true);
  expect(ready).toBe(200);
  expect(Object.keys(load.byStatus).every((s) => ['200', '201', '409', '503'].includes(s))).toBe(
    true,
  );
  expect(load.errors).toEqual([]);
  expect(load.longestMs).toBeLessThan(3000 + 500);
  expect(tail.length).toBeGreaterThan(0);
  expect(late).toEqual([]);
  await checkInvariants(url, load);
});

test('refused connections and too many connections are transient', async () => {
  const { url, ids, w } = await setup({}, true);
  const loadP = runLoad({ base: w.base, accounts: ids, durationMs: 4000, concurrency: 6 });
  await sleep(500);
  fx.proxy!.setMode('refuse');
  fx.proxy!.resetAll('rst');
  await sleep(1000);
  fx.proxy!.setMode('pass');
  // 53300: a role limit of 1 connection while the pool wants 5.
  await psql(fx.pg.url(), `alter role postgres connection limit 1`);
  const db = new URL(url).pathname.slice(1);
  await psql(
    fx.pg.url(),
    `select pg_terminate_backend(pid) from pg_stat_activity where datname = '${db}'`,
  );
  await sleep(800);
  await psql(fx.pg.url(), `alter role postgres connection limit -1`);
  const load = await loadP;
  summary('refuse-53300', load, { queries: w.worker.stats.queries });
  only2xx(load);
  await checkInvariants(url, load);
});

test('a client that disconnects mid-query leaves no connection behind', async () => {
  const { w } = await setup(
    { KEEL_ENABLE_TEST_ROUTES: 'true', DB_STATEMENT_TIMEOUT_MS: '10000' },
    false,
  );
  const idleOpen = w.worker.stats.open;
  const controllers = Array.from({ length: POOL }, () => new AbortController());
  const pending = controllers.map((c) =>
    fetch(`${w.base}/__test/slow?ms=5000`, { signal: c.signal }).catch(() => 'aborted'),
  );
  await holds(() => w.worker.stats.busy > 0, 2000);
  expect(w.worker.stats.busy).toBeGreaterThan(0);
  for (const c of controllers) c.abort();
  await Promise.all(pending);
  // Cancelled on the server: busy drops long before the 5 s sleep would end.
  await holds(() => w.worker.stats.busy === 0, 2000);
  expect(w.worker.stats.busy).toBe(0);
  expect(w.worker.stats.open).toBeLessThanOrEqual(Math.max(idleOpen, POOL));
  const r = await fetch(`${w.base}/api/accounts?limit=1`);
  expect(r.status).toBe(200);
});

/** ms from `at` until the first request that started after it and was answered 2xx. */
function firstOkAfter(load: LoadResult, at: number): number {
  const ok = load.timeline
    .filter((t) => t.at >= at && (t.status === 200 || t.status === 201))
    .map((t) => t.at + t.ms - at);
  return ok.length ? Math.min(...ok) : Infinity;
}
