/**
 * The container entry, `pm2-runtime start ecosystem.config.js`, stopped under load: SIGTERM to
 * it alone (what Railway and `docker stop` send to PID 1), and SIGINT to its whole process
 * group (Ctrl+C in a terminal, systemd's KillMode=control-group), where each worker gets the
 * signal directly and again from PM2. Requests in flight finish and the whole process tree is
 * gone within SHUTDOWN_TIMEOUT_MS + 1 s.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { getFresh } from '../support/http';
import { checkInvariants, seedAccounts } from '../support/ledger';
import { alive, descendants, remember, slowInFlight, waitGone } from '../support/lifecycle';
import { untilValue } from '../support/wait';
import { ledgerOutcome, startLoad, tally } from '../support/load';
import { createPm2, ensureBuilt, ROOT, TEST_ECOSYSTEM, webEnv, type Pm2 } from '../support/pm2';
import { freePort, startTestPostgres, type TestPostgres } from '../support/postgres';

const SHUTDOWN_TIMEOUT_MS = 3000;
const SLOW = 10;
const SLOW_MS = 1500;

let pg: TestPostgres;
let url: string;
// Everything this file starts, so afterAll can end what a failed step left behind (by pid).
const started: Array<{ proc: ChildProcess; tree: number[]; pm2: Pm2 }> = [];

beforeAll(async () => {
  ensureBuilt();
  pg = await startTestPostgres();
  url = await pg.createDatabase();
});

afterAll(async () => {
  for (const { proc, tree, pm2 } of started) {
    for (const pid of [proc.pid, ...tree]) if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    fs.rmSync(pm2.home, { recursive: true, force: true });
  }
  await pg?.destroy();
});

function workerPids(runtimePid: number): number[] {
  return descendants(runtimePid).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('pm2-worker.js');
    } catch {
      return false;
    }
  });
}

async function stopUnderLoad(how: 'SIGTERM to pm2-runtime' | 'SIGINT to the process group') {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  // Only for its isolated PM2_HOME and environment: pm2-runtime runs PM2 in-process.
  const pm2 = createPm2({ ...webEnv(url, port), SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) });
  // Its own process group (detached), so a group signal reaches only what this test started.
  const proc = spawn(process.execPath, [pm2.runtimeBin, 'start', TEST_ECOSYSTEM], {
    cwd: ROOT,
    env: pm2.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  remember(proc.pid!);
  const entry = { proc, tree: [] as number[], pm2 };
  started.push(entry);
  let output = '';
  proc.stdout!.on('data', (c: Buffer) => (output += c.toString('utf8')));
  proc.stderr!.on('data', (c: Buffer) => (output += c.toString('utf8')));
  const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
    proc.once('exit', (code) => resolve({ code, at: Date.now() })),
  );

  const workers = await untilValue(
    async () => workerPids(proc.pid!),
    (pids) => pids.length === 2,
    30000,
    'two workers',
  );
  await untilValue(
    () =>
      getFresh(`${base}/readyz`).then(
        (r) => r.status,
        () => 0,
      ),
    (s) => s === 200,
    30000,
    'ready',
  );
  const accounts = await seedAccounts(base, 20, 1_000_000);
  const load = startLoad({ base, accounts, concurrency: 8, maxMs: 20000, maxRequests: 100000 });
  await new Promise((r) => setTimeout(r, 1000));
  // Slow requests on both workers, so something is certainly in flight when the signal lands.
  const slow = await slowInFlight(base, url, SLOW, SLOW_MS);

  entry.tree = descendants(proc.pid!);
  const signalled = Date.now();
  if (how === 'SIGTERM to pm2-runtime') process.kill(proc.pid!, 'SIGTERM');
  else process.kill(-proc.pid!, 'SIGINT');
  const { code, at } = await exited;
  const goneAt = await waitGone([proc.pid!, ...entry.tree], SHUTDOWN_TIMEOUT_MS + 5000);
  const samples = await load.stop();
  const slowAnswers = await slow.answers;
  fs.rmSync(pm2.home, { recursive: true, force: true });

  const inFlight = samples.filter((s) => s.start < signalled);
  const after = samples.filter((s) => s.start >= signalled);
  const shutdownLines = output
    .split('\n')
    .filter((l) => l.includes('"shutdown complete"'))
    .map((l) => JSON.parse(l.slice(l.indexOf('{'))) as Record<string, unknown>);
  const treeExitMs = Math.max(at, goneAt) - signalled;
  console.log(
    JSON.stringify({
      scenario: how,
      treeExitMs,
      runtimeExitCode: code,
      sent: samples.length,
      sentBeforeSignal: tally(inFlight),
      sentAfterSignal: tally(after),
      slow: slowAnswers.map((a) => a.status),
      workers: shutdownLines.map((l) => ({ pid: l.pid, reason: l.reason, code: l.code, ms: l.ms })),
    }),
  );

  expect(code).toBe(0);
  expect(treeExitMs).toBeLessThanOrEqual(SHUTDOWN_TIMEOUT_MS + 1000);
  // Everything sent before the signal got a healthy answer; later requests may be refused.
  expect(slowAnswers.map((a) => a.status)).toEqual(Array(SLOW).fill(200));
  for (const s of inFlight) {
    expect(s.error).toBeUndefined();
    expect([200, 201, 409]).toContain(s.status);
  }
  // Both workers drained and exited 0 (PM2 passes the stop on as SIGINT).
  expect(shutdownLines.map((l) => l.pid).sort()).toEqual([...workers].sort());
  expect(shutdownLines.map((l) => l.code)).toEqual([0, 0]);
  await checkInvariants(url, ledgerOutcome(samples));
}

test('SIGTERM to pm2-runtime under load: in-flight requests finish, the tree exits in time', () =>
  stopUnderLoad('SIGTERM to pm2-runtime'));

test('SIGINT to the whole process group (Ctrl+C): the signal PM2 relays does not cut the drain', () =>
  stopUnderLoad('SIGINT to the process group'));
