/**
 * Real PM2, real cluster mode, two workers: /metrics answers for both whichever worker gets the
 * scrape (and within its deadline when a sibling hangs), and `pm2 show` / `pm2 jlist` carry the
 * live custom metrics. The PM2 daemon runs in its own PM2_HOME and is killed afterwards.
 */
import fs from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import { PM2_METRICS } from '../../src/metrics/pm2';
import { getFresh } from '../support/http';
import { parseExposition, valueOf } from '../support/metrics';
import { startWebCluster, type Pm2 } from '../support/pm2';
import type { TestPostgres } from '../support/postgres';
import { sleep } from '../support/wait';

let pg: TestPostgres;
let pm2: Pm2;
let base: string;
const TOKEN = 'metrics-token-for-the-test';
const auth = { Authorization: `Bearer ${TOKEN}` };

beforeAll(async () => {
  ({ pg, pm2, base } = await startWebCluster({ METRICS_TOKEN: TOKEN }));
});

afterAll(async () => {
  await pm2?.kill();
  await pg?.destroy();
});

/** GET with a fresh TCP connection (PM2's master balances connections, not requests). */
function get(pathname: string, headers: Record<string, string> = {}, timeoutMs = 10000) {
  return getFresh(`${base}${pathname}`, timeoutMs, headers);
}

/** The web processes with their worker label (NODE_APP_INSTANCE) and live custom metrics. */
async function webProcs() {
  const { stdout } = await pm2.run(['jlist']);
  const procs = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{
    name: string;
    pid: number;
    pm2_env: {
      NODE_APP_INSTANCE: number | string;
      axm_monitor: Record<string, { value: unknown }>;
    };
  }>;
  return procs
    .filter((p) => p.name === 'web')
    .map((p) => ({
      pid: p.pid,
      worker: String(p.pm2_env.NODE_APP_INSTANCE),
      monitor: p.pm2_env.axm_monitor,
    }));
}

/** Which worker wrote the access-log line of the request with this id. */
function answeredBy(reqId: string): string | undefined {
  const dir = path.join(pm2.home, 'logs');
  for (const file of fs.readdirSync(dir).filter((f) => f.startsWith('web-out'))) {
    for (const line of fs.readFileSync(path.join(dir, file), 'utf8').split('\n')) {
      if (!line.includes(reqId)) continue;
      const entry = JSON.parse(line) as { msg?: string; reqId?: string; worker?: string };
      if (entry.msg === 'request' && entry.reqId === reqId) return entry.worker;
    }
  }
  return undefined;
}

async function traffic(n: number): Promise<void> {
  for (let i = 0; i < n; i++)
    expect((await getFresh(`${base}/api/accounts?limit=5`)).status).toBe(200);
}

test('/metrics needs the token, then reports both workers whichever worker answers', async () => {
  await traffic(20);
  const denied = await get('/metrics');
  expect(denied.status).toBe(401);
  expect(JSON.parse(denied.body)).toEqual({
    error: { code: 'unauthorized', message: expect.any(String) },
  });
  expect(denied.headers['www-authenticate']).toBe('Bearer');
  expect((await get('/metrics', { Authorization: 'Bearer wrong' })).status).toBe(401);

  const answering = new Set<string>();
  for (let i = 0; i < 12; i++) {
    const reqId = `scrape-${Date.now()}-${i}`;
    const res = await get('/metrics', { ...auth, 'X-Request-Id': reqId });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0.0.4/);
    const samples = parseExposition(res.body);
    for (const worker of ['0', '1']) {
      expect(valueOf(samples, 'keel_metrics_worker_up', { worker })).toBe(1);
      expect(valueOf(samples, 'keel_db_connections_open', { worker })).toBeGreaterThanOrEqual(0);
      expect(valueOf(samples, 'process_start_time_seconds', { worker })).toBeGreaterThan(0);
      const requests = samples.filter(
        (s) => s.name === 'http_requests_total' && s.labels.worker === worker,
      );
      expect(requests.length).toBeGreaterThan(0);
    }
    // Every series says whose it is.
    expect(samples.filter((s) => s.labels.worker === undefined)).toEqual([]);
    // The access-log line reaches PM2's log file shortly after the response.
    let by: string | undefined;
    for (const end = Date.now() + 2000; !by && Date.now() < end; await sleep(25))
      by = answeredBy(reqId);
    if (by) answering.add(by);
  }
  expect([...answering].sort()).toEqual(['0', '1']);
});

test('a hung sibling costs the scrape at most its deadline and shows as worker_up 0', async () => {
  const hung = (await webProcs())[1]!;
  const hungWorker = hung.worker;
  process.kill(hung.pid, 'SIGSTOP');
  try {
    let answered: { ms: number; body: string } | null = null;
    // Half the connections go to the stopped worker and time out; one to the live one answers.
    for (let i = 0; i < 10 && !answered; i++) {
      const started = Date.now();
      const res = await get('/metrics', auth, 3000).catch(() => null);
      if (res?.status === 200) answered = { ms: Date.now() - started, body: res.body };
    }
    expect(answered).not.toBeNull();
    expect(answered!.ms).toBeLessThan(2500);
    const samples = parseExposition(answered!.body);
    expect(valueOf(samples, 'keel_metrics_worker_up', { worker: hungWorker })).toBe(0);
    expect(valueOf(samples, 'keel_db_connections_open', { worker: hungWorker })).toBeUndefined();
  } finally {
    process.kill(hung.pid, 'SIGCONT');
  }
});

test('pm2 jlist and pm2 show carry the custom metrics with live values, also during a fault', async () => {
  // A fault while the operator watches: every Keel backend terminated every 300 ms.
  const admin = postgres(pg.url(), { max: 1, onnotice: () => undefined });
  let stop = false;
  const killer = (async () => {
    while (!stop) {
      await admin`select pg_terminate_backend(pid) from pg_stat_activity where application_name like 'keel:%'`;
      await sleep(300);
    }
  })();
  try {
    const until = Date.now() + 3000;
    while (Date.now() < until) await traffic(5);
    const web = await webProcs();
    expect(web.map((p) => p.worker).sort()).toEqual(['0', '1']);
    for (const p of web) {
      for (const name of PM2_METRICS) expect(p.monitor).toHaveProperty([name, 'value']);
      expect(typeof p.monitor['db conns open']!.value).toBe('number');
    }
    const sum = (name: string) => web.reduce((a, p) => a + Number(p.monitor[name]!.value), 0);
    expect(sum('queries/s')).toBeGreaterThan(0);
    expect(sum('retries/min')).toBeGreaterThan(0);

    const { stdout: show } = await pm2.run(['show', 'web']);
    const plain = show.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'), '');
    for (const name of PM2_METRICS) expect(plain).toContain(name);
    process.stderr.write(`pm2 show web during a terminate-loop:\n${plain}\n`);
  } finally {
    stop = true;
    await killer;
    await admin.end({ timeout: 1 });
  }
});
