/**
 * Starts the production wiring (`startWorker` from src/main.ts) in-process on port 0 against a
 * real database, with logs captured for assertions. Everything it opens, `stop()` closes.
 */
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/config';
import { dbUrlParts } from '../../src/config/db-url';
import { createLogger } from '../../src/logger';
import { startWorker, type Worker } from '../../src/main';
import { contract, expectContract } from './openapi';
import { testOnlyRoutes } from './test-routes.js';
import { startTestPostgres, type TestPostgres } from './postgres';

export interface TestWorker {
  worker: Worker;
  base: string;
  logs: Array<Record<string, unknown>>;
  rawLogs: string[];
  exitCodes: number[];
  stop(): Promise<void>;
}

/** `KEEL_ENABLE_TEST_ROUTES: 'true'` in `env` mounts ./test-routes.js (never in production). */
export async function startTestWorker(
  databaseUrl: string,
  { KEEL_ENABLE_TEST_ROUTES: testRoutes, ...env }: Record<string, string> = {},
  { awaitPrepared = true }: { awaitPrepared?: boolean } = {},
): Promise<TestWorker> {
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    HOST: '127.0.0.1',
    PORT: '0',
    NODE_ENV: 'test',
    LOG_LEVEL: 'debug',
    SHUTDOWN_TIMEOUT_MS: '2000',
    ...env,
  });
  const logs: Array<Record<string, unknown>> = [];
  const rawLogs: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        rawLogs.push(line);
        logs.push(JSON.parse(line) as Record<string, unknown>);
      }
      cb();
    },
  });
  const logger = createLogger({
    level: config.logLevel,
    base: { worker: config.instanceId, pid: process.pid },
    secrets: [dbUrlParts(databaseUrl).password],
    stream,
  });
  const exitCodes: number[] = [];
  const worker = await startWorker(config, {
    logger,
    exit: (code) => exitCodes.push(code),
    routes: testRoutes === 'true' ? [testOnlyRoutes] : [],
  });
  if (awaitPrepared) await worker.prepared;
  return {
    worker,
    base: `http://127.0.0.1:${worker.port}`,
    logs,
    rawLogs,
    exitCodes,
    async stop() {
      await worker.shutdown('test done');
      await new Promise<void>((resolve) => {
        if (!worker.server.listening) return resolve();
        worker.server.close(() => resolve());
      });
    },
  };
}

/** What `useWorker` hands a test file; its fields are set once `beforeAll` has run. */
export interface WorkerFixture {
  pg: TestPostgres;
  url: string;
  w: TestWorker;
  base: string;
}

/**
 * The setup integration files share: a throwaway Postgres, one database and one in-process
 * worker (with `env`) for the whole file, started before its first test and stopped after its
 * last. Call it at the top level of the file.
 */
export function useWorker(env: Record<string, string> = {}): WorkerFixture {
  const fixture = {} as WorkerFixture;
  beforeAll(async () => {
    contract(); // compiled now, not under a test's load (./openapi)
    fixture.pg = await startTestPostgres();
    fixture.url = await fixture.pg.createDatabase();
    fixture.w = await startTestWorker(fixture.url, env);
    fixture.base = fixture.w.base;
  });
  afterAll(async () => {
    await fixture.w?.stop();
    await fixture.pg?.destroy();
  });
  return fixture;
}

/**
 * fetch() with a JSON body; returns status, headers and parsed body. Every answer is checked
 * against docs/openapi.json first (./openapi): one that breaks it fails the test.
 */
export async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  expectContract({ method, path, status: res.status, headers: res.headers, text });
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body: parsed };
}
