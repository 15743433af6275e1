/** The HTTP seam's harness: an app's `callback()` on 127.0.0.1 port 0, and a captured logger. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { Db } from '../../../src/db/runner';
import { createApp } from '../../../src/http/app';
import { readOpenApi } from '../../../src/http/routes/ops';
import type { Accounts } from '../../../src/ledger/accounts';
import type { Transfers } from '../../../src/ledger/transfers';
import { createReadiness, type Readiness } from '../../../src/lifecycle/readiness';
import { createLogger, type Logger } from '../../../src/logger';

export interface Served {
  base: string;
  close(): Promise<void>;
}

export async function serve(callback: http.RequestListener): Promise<Served> {
  const server = http.createServer(callback);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A logger whose JSON lines land in `logs`. */
export function capturedLogger(): { logger: Logger; logs: Array<Record<string, unknown>> } {
  const logs: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line));
      cb();
    },
  });
  return { logger: createLogger({ level: 'info', base: {}, stream }), logs };
}

export interface AppUnderTest extends Served {
  app: ReturnType<typeof createApp>;
  logs: Array<Record<string, unknown>>;
  /** Migrated from the start; a test may swap its methods. */
  readiness: Readiness;
}

/**
 * `createApp` with no database: the ledger is what the test hands in (a method it leaves out
 * fails the request), readiness says migrated, and the body limit is 1 KiB.
 */
export async function appWith(ledger: {
  db?: Db;
  accounts?: Partial<Accounts>;
  transfers?: Partial<Transfers>;
}): Promise<AppUnderTest> {
  const { logger, logs } = capturedLogger();
  const readiness = createReadiness();
  readiness.markMigrated();
  const app = createApp({
    config: {
      requestTimeoutMs: 2000,
      bodyLimitBytes: 1024,
      keepAliveHintS: 5,
    },
    logger,
    db: ledger.db ?? ({} as Db),
    accounts: ledger.accounts as Accounts,
    transfers: ledger.transfers as Transfers,
    readiness,
    metrics: async () => ({ status: 200, type: 'text/plain', text: '' }),
    openapi: readOpenApi(),
  });
  return { ...(await serve(app.callback())), app, logs, readiness };
}
