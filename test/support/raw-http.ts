/**
 * A raw TCP client for HTTP/1.1: writes exactly the bytes a test gives (repeated headers,
 * bodies shorter than their Content-Length, headers in pieces) and reads responses off the same
 * socket, so keep-alive behaviour after an error can be observed. A write that starts with a
 * request line names the request the next unpaired response answers; that response is checked
 * against docs/openapi.json (./openapi).
 */
import net from 'node:net';
import { expectContract } from './openapi';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * The first whole response in `buf` (its head and a Content-Length body) and the bytes after
 * it; null until all of it has arrived.
 */
export function takeResponse<B extends ArrayBufferLike>(
  buf: Buffer<B>,
): { response: RawResponse; rest: Buffer<B> } | null {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1]);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const length = Number(headers['content-length'] ?? 0);
  if (buf.length < end + 4 + length) return null;
  const body = buf.subarray(end + 4, end + 4 + length).toString('utf8');
  return { response: { status, headers, body }, rest: buf.subarray(end + 4 + length) };
}

export interface RawConnection {
  write(data: string | Buffer): void;
  /** The next complete response, or null when the server closed the socket first. */
  next(): Promise<RawResponse | null>;
  /** Resolves when the server has closed the socket ('end' or 'close', or a reset). */
  closed: Promise<'end' | 'close' | 'reset'>;
  destroy(): void;
}

const REQUEST_LINE = /^([A-Z]+) (\S+) HTTP\/1\.[01]\r\n/;

export function rawConnect(port: number): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let waiter: (() => void) | null = null;
    let gone = false;
    const wake = () => {
      const w = waiter;
      waiter = null;
      w?.();
    };
    const closed = new Promise<'end' | 'close' | 'reset'>((res) => {
      socket.on('end', () => {
        gone = true;
        wake();
        res('end');
      });
      socket.on('close', () => {
        gone = true;
        wake();
        res('close');
      });
      socket.on('error', () => {
        gone = true;
        wake();
        res('reset');
      });
    });
    socket.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      wake();
    });
    const parse = (): RawResponse | null => {
      const taken = takeResponse(buf);
      if (!taken) return null;
      buf = taken.rest;
      const request = requests.shift();
      if (request) {
        const { status, headers, body: text } = taken.response;
        expectContract({ ...request, status, headers, text });
      }
      return taken.response;
    };
    const requests: Array<{ method: string; path: string }> = [];
    socket.once('connect', () =>
      resolve({
        write: (d) => {
          const line = REQUEST_LINE.exec(Buffer.from(d).subarray(0, 2100).toString('latin1'));
          if (line) requests.push({ method: line[1]!, path: line[2]! });
          socket.write(d);
        },
        async next() {
          for (;;) {
            const r = parse();
            if (r) return r;
            if (gone) return null;
            await new Promise<void>((w) => (waiter = w));
          }
        },
        closed,
        destroy: () => socket.destroy(),
      }),
    );
    socket.once('error', reject);
  });
}
