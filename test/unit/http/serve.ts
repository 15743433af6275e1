/** The HTTP seam's harness: an app's `callback()` on 127.0.0.1 port 0, and a captured logger. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
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
