/** Shutdown and idle keep-alive sockets: never closed from our side before the drain deadline. */
import http from 'node:http';
import net from 'node:net';
import { Agent, request } from 'undici';
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

test('keep-alive answers advertise an idle time no longer than the drain deadline (not the server timer)', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http.get(`${w.base}/healthz`, { agent }, resolve).on('error', reject),
    );
    res.resume();
    const names = res.rawHeaders.filter((_, i) => i % 2 === 0).map((h) => h.toLowerCase());
    expect(names.filter((h) => h === 'keep-alive')).toHaveLength(1);
    // SHUTDOWN_TIMEOUT_MS is 8000 here; KEEP_ALIVE_TIMEOUT_MS keeps its 65 s default.
    expect(res.headers['keep-alive']).toBe('timeout=8');
    expect(res.headers.connection).toBe('keep-alive');
  } finally {
    agent.destroy();
  }
});

test('an idle keep-alive socket stays open through the drain: its next request is answered with Connection: close', async () => {
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
  // Idle for longer than the old 1 s sweep, which closed it: a client sending right then was reset.
  await new Promise((r) => setTimeout(r, 1500));
  expect(idleClosed).toBe(false);
  expect(await get(w.base, '/healthz', idle)).toEqual({ status: 200, connection: 'close' });
  await done;
  busy.destroy();
  idle.destroy();
  expect(idleClosed).toBe(true);
  expect(w.exitCodes).toEqual([0]);
  // Every client left on its own: the drain did not wait for the 8 s deadline.
  expect(w.logs.some((l) => l.msg === 'shutdown deadline reached')).toBe(false);
});

test('an idle socket whose client ignores the hint is ended at the drain deadline, exit 0', async () => {
  const quiet = await startTestWorker(await pg.createDatabase(), { SHUTDOWN_TIMEOUT_MS: '1500' });
  // A raw client that reads one answer and then holds the socket, as a pool that ignores hints.
  const socket = net.connect(Number(new URL(quiet.base).port), '127.0.0.1');
  try {
    const answered = new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (c: Buffer) => {
        text += c.toString('latin1');
        if (text.includes('\r\n\r\n')) resolve(text);
      });
    });
    socket.write('GET /healthz HTTP/1.1\r\nHost: keel\r\n\r\n');
    expect(await answered).toMatch(/^HTTP\/1\.1 200/);
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    await quiet.worker.shutdown('test');
    await closed;
    expect(quiet.exitCodes).toEqual([0]);
    expect(quiet.logs.some((l) => l.msg === 'shutdown deadline reached')).toBe(true);
  } finally {
    socket.destroy();
    await quiet.stop();
  }
});

test('a client that honours the hint lets its idle socket go before the deadline: the drain ends without forcing anything', async () => {
  const quick = await startTestWorker(await pg.createDatabase(), { SHUTDOWN_TIMEOUT_MS: '4000' });
  // undici keeps an idle socket for the server's hint minus 2 s: 2 s here.
  const agent = new Agent({ connections: 4 });
  try {
    await Promise.all(
      Array.from({ length: 4 }, () =>
        request(`${quick.base}/healthz`, { dispatcher: agent }).then((r) => r.body.dump()),
      ),
    );
    await quick.worker.shutdown('test');
    expect(quick.exitCodes).toEqual([0]);
    expect(quick.logs.some((l) => l.msg === 'shutdown deadline reached')).toBe(false);
  } finally {
    await agent.close();
    await quick.stop();
  }
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
