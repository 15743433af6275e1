/**
 * Zero-downtime reload under real PM2: `pm2 reload web` twice while clients keep reading and
 * making keyed transfers, over keep-alive sockets and fresh connections. Nothing may fail.
 */
import { checkInvariants, seedAccounts } from '../support/ledger';
import { failures, ledgerOutcome, startLoad, tally } from '../support/load';
import { startWebCluster, type Pm2 } from '../support/pm2';
import type { TestPostgres } from '../support/postgres';
import { until } from '../support/wait';

const LOOPS = 12;
let pg: TestPostgres;
let pm2: Pm2;
let url: string;
let base: string;

beforeAll(async () => {
  // Drain scaled down from 10 s to 3 s, so each worker's drain (and the suite) stays short.
  ({ pg, pm2, url, base } = await startWebCluster({ LOG_LEVEL: 'warn' }));
});

afterAll(async () => {
  await pm2?.kill();
  await pg?.destroy();
});

test('pm2 reload web twice under load: no failed request, no connection error', async () => {
  const before = await pm2.list();
  const accounts = await seedAccounts(base, 20, 1_000_000);
  const started = Date.now();
  const load = startLoad({ base, accounts, concurrency: LOOPS, maxMs: 45000, maxRequests: 200000 });

  // The reloads start once the load runs: every client loop has been answered.
  await until(
    'an answer to every client loop',
    () => new Set(load.samples.map((s) => s.loop)).size === LOOPS,
    30000,
  );
  const reloads: number[] = [];
  for (let i = 0; i < 2; i++) {
    const t0 = Date.now();
    await pm2.run(['reload', 'web']);
    reloads.push(Date.now() - t0);
  }
  // Load goes on until the new workers have answered 500 requests sent after the second reload
  // (and over 1000 in all), not for a fixed time.
  const reloaded = Date.now();
  await until(
    '500 answers after the second reload',
    () =>
      load.samples.filter((s) => s.start >= reloaded).length >= 500 && load.samples.length > 1000,
    30000,
  );
  const samples = await load.stop();
  const after = await pm2.list();

  const failed = failures(samples);
  console.log(
    JSON.stringify({
      scenario: 'reload x2',
      loadMs: Date.now() - started,
      reloadMs: reloads,
      sent: samples.length,
      byStatus: tally(samples),
      failed: failed.length,
      pidsBefore: before.map((p) => p.pid),
      pidsAfter: after.map((p) => p.pid),
    }),
  );

  expect(samples.length).toBeGreaterThan(1000);
  expect(failed).toEqual([]);
  // Every answer is one a healthy ledger gives: 200 reads, 201 transfers, 409 when a balance runs dry.
  for (const s of samples) expect([200, 201, 409]).toContain(s.status);
  // Both workers were replaced twice.
  expect(after.map((p) => p.restarts)).toEqual([2, 2]);
  expect(after.every((p) => p.status === 'online')).toBe(true);
  expect(after.map((p) => p.pid).filter((pid) => before.some((b) => b.pid === pid))).toEqual([]);
  await checkInvariants(url, ledgerOutcome(samples));
});
