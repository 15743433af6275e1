/** Shutdown and idle keep-alive sockets: left alone at the signal, closed after a grace. */
import http from 'node:http';
import { startTestPostgres, type TestPostgres } from '../support/postgres';
import { startTestWorker, type TestWorker } from '../support/worker';

let pg: TestPostgres;
let w: TestWorker;

beforeAll(async () => {
  pg = await startTestPostgres();
  w = await startTestWorker(await pg.createDatabase(), { SHUTDOWN_TIMEOUT_MS: '8000' });
});

afterAll(async () => {
  await w?.stop();
  await pg?.destroy();
});

function get(base: string, path: string, agent: http.Agent) {
  return new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
    http
      .get(`${base}${path}`, { agent }, (res) => {
        res.resume();
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }),
        );
      })
      .on('error', reject);
  });
}

test('an idle keep-alive socket does not hold the drain to its deadline, and a busy one is answered', async () => {
  const busy = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const idle = new http.Agent({ keepAlive: true, maxSockets: 1 });
  expect((await get(w.base, '/healthz', busy)).status).toBe(200);
  expect((await get(w.base, '/healthz', idle)).status).toBe(200);
  const [idleSocket] = Object.values(idle.freeSockets).flat();
  let idleClosed = false;
  idleSocket!.once('close', () => (idleClosed = true));

  const done = w.worker.shutdown('test');
  // Right after the signal a kept-alive socket is still served, and told to close.
  expect(await get(w.base, '/healthz', busy)).toEqual({ status: 200, connection: 'close' });
  expect(idleClosed).toBe(false);
  await done;
  busy.destroy();
  idle.destroy();
  expect(idleClosed).toBe(true);
  expect(w.exitCodes).toEqual([0]);
  // Drained without waiting for the 8 s deadline.
  expect(w.logs.some((l) => l.msg === 'shutdown deadline reached')).toBe(false);
});

test('once the pool has closed, a request is answered 503 shutting_down, never a 500', async () => {
  const late = await startTestWorker(await pg.createDatabase(), { SHUTDOWN_TIMEOUT_MS: '2000' });
  try {
    await late.worker.handle.end(1);
    const res = await fetch(`${late.base}/api/accounts/1`);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('shutting_down');
  } finally {
    await late.stop();
  }
});
