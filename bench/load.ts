/**
 * The load: a closed loop of N clients over keep-alive connections (undici Pool, one connection
 * per client), each sending its next request as soon as the previous one is answered: 50 %
 * `GET /api/accounts/:id`, 50 % `POST /api/transfers` with a fresh Idempotency-Key, random
 * accounts. undici, not autocannon's raw client: it honours `Connection: close` (Keel's drain
 * answers), so a reload is measured as users' HTTP clients see it.
 *
 * With `thinkMs`, each client pauses a random 0..thinkMs after every answer, so its socket sits
 * idle in between (what a drain must not cut from under a client about to reuse it).
 *
 * Every answer is recorded (completion time, latency, status, kind); a socket error is status 0.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool, type Dispatcher } from 'undici';
import { errorName } from './errors';

// The load: 32 clients, each with its own keep-alive connection.
const CONNECTIONS = 32;
// A client whose request failed at the socket waits this long before the next one, so a target
// that is down costs a bounded number of attempts instead of a busy loop.
const ERROR_PAUSE_MS = 20;
// Longer than Keel's REQUEST_TIMEOUT_MS (10 s): the server, not the client, gives up first.
const CLIENT_TIMEOUT_MS = 15000;

function createRecorder() {
  let cap = 1 << 16;
  let n = 0;
  let at = new Float64Array(cap);
  let ms = new Float64Array(cap);
  let status = new Uint16Array(cap);
  let kind = new Uint8Array(cap);
  const grow = () => {
    cap *= 2;
    const copy = <T extends Float64Array | Uint16Array | Uint8Array>(
      Type: new (n: number) => T,
      old: T,
    ): T => {
      const next = new Type(cap);
      next.set(old);
      return next;
    };
    at = copy(Float64Array, at);
    ms = copy(Float64Array, ms);
    status = copy(Uint16Array, status);
    kind = copy(Uint8Array, kind);
  };
  return {
    push(atMs: number, latencyMs: number, code: number, k: number) {
      if (n === cap) grow();
      at[n] = atMs;
      ms[n] = latencyMs;
      status[n] = code;
      kind[n] = k;
      n += 1;
    },
    size: () => n,
    /** Views over the first n records (valid until the next push that grows). */
    view: (): View => ({
      n,
      at: at.subarray(0, n),
      ms: ms.subarray(0, n),
      status: status.subarray(0, n),
      kind: kind.subarray(0, n),
    }),
  };
}

/** The first n records: completion time and latency (ms), status (0: socket error), kind. */
export interface View {
  n: number;
  at: Float64Array;
  ms: Float64Array;
  status: Uint16Array;
  kind: Uint8Array;
}

export type Recorder = ReturnType<typeof createRecorder>;
export type Load = ReturnType<typeof startLoad>;

const READ = 0;
const TRANSFER = 1;

/**
 * Starts the load at once; `stop()` ends it (in-flight requests finish), `done` resolves with
 * the recording. Times are ms since `startedAt` (performance.now() origin of this load).
 */
function startLoad({
  port,
  connections,
  accounts,
  keyPrefix,
  thinkMs = 0,
}: {
  port: number;
  connections: number;
  accounts: { lo: number; hi: number };
  keyPrefix: string;
  thinkMs?: number;
}) {
  const pool = new Pool(`http://127.0.0.1:${port}`, {
    connections,
    pipelining: 1,
    keepAliveTimeout: 60000,
    headersTimeout: CLIENT_TIMEOUT_MS,
    bodyTimeout: CLIENT_TIMEOUT_MS,
    connect: { timeout: 5000 },
  });
  const recorder = createRecorder();
  const errorCodes: Record<string, number> = {};
  const started = performance.now();
  const startedAtEpoch = Date.now();
  const span = accounts.hi - accounts.lo + 1;
  const pick = () => accounts.lo + Math.floor(Math.random() * span);
  let seq = 0;
  let stopped = false;

  function next(): { kind: number; opts: Dispatcher.RequestOptions } {
    if (Math.random() < 0.5) {
      return { kind: READ, opts: { method: 'GET', path: `/api/accounts/${pick()}` } };
    }
    const from = pick();
    let to = pick();
    while (to === from) to = pick();
    seq += 1;
    return {
      kind: TRANSFER,
      opts: {
        method: 'POST',
        path: '/api/transfers',
        headers: {
          'content-type': 'application/json',
          'idempotency-key': `${keyPrefix}-${seq}`,
        },
        body: JSON.stringify({ from, to, amount: 1 + Math.floor(Math.random() * 100) }),
      },
    };
  }

  async function client() {
    while (!stopped) {
      const { kind, opts } = next();
      const t = performance.now();
      let code = 0;
      try {
        const res = await pool.request(opts);
        code = res.statusCode;
        await res.body.dump();
      } catch (err) {
        const name = errorName(err);
        errorCodes[name] = (errorCodes[name] ?? 0) + 1;
      }
      const end = performance.now();
      recorder.push(end - started, end - t, code, kind);
      if (code === 0) await sleep(ERROR_PAUSE_MS);
      // A client that pauses leaves its keep-alive socket idle for a random while (the soak).
      else if (thinkMs > 0) await sleep(Math.random() * thinkMs);
    }
  }

  const done = Promise.all(Array.from({ length: connections }, client)).then(async () => {
    await pool.close();
    return { recorder, errorCodes, startedAtEpoch, elapsedMs: performance.now() - started };
  });

  return {
    recorder,
    startedAtEpoch,
    elapsed: () => performance.now() - started,
    stop() {
      stopped = true;
      return done;
    },
    done,
  };
}

export { startLoad, CONNECTIONS, READ, TRANSFER };
