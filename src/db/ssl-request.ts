/**
 * The 8-byte SSLRequest (length 8, code 80877103: "may we speak TLS?") on a fresh TCP
 * connection. A PostgreSQL server, or anything speaking its protocol, answers with one byte,
 * 'S' or 'N', before any authentication, so it costs one round trip and no backend. Used by
 * the stall watch (src/db/ssl-probe.ts, the same request on a probe that waits in a stall) and by `keel diagnose`
 * (how long the connect took, is TLS offered?).
 */
import net from 'node:net';

export const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

export type SslRequestOutcome =
  /** The server answered: `tls` when the byte was 'S'. */
  | { kind: 'answered'; tls: boolean; connectMs: number }
  /** Connected, then the peer closed without answering. */
  | { kind: 'closed'; connectMs: number }
  /** Refused, reset, unreachable: the socket's error. */
  | { kind: 'error'; error: NodeJS.ErrnoException }
  /** No answer within the timeout (`connected`: the TCP connect itself succeeded). */
  | { kind: 'timeout'; connected: boolean };

/** One SSLRequest; the socket is destroyed once the outcome is known. Never rejects. */
export function sendSslRequest(
  target: { host: string; port: number },
  timeoutMs: number,
): Promise<SslRequestOutcome> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let connectMs: number | null = null;
    const socket = net.connect({ host: target.host, port: target.port });
    let settled = false;
    const done = (outcome: SslRequestOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    // The socket keeps the process alive while it waits; the timer need not.
    const timer = setTimeout(
      () => done({ kind: 'timeout', connected: connectMs !== null }),
      timeoutMs,
    );
    timer.unref();
    socket.once('connect', () => {
      connectMs = Math.round((performance.now() - t0) * 10) / 10;
      socket.write(SSL_REQUEST);
    });
    socket.once('data', (d: Buffer) =>
      done({ kind: 'answered', tls: d[0] === 0x53, connectMs: connectMs ?? 0 }),
    );
    socket.once('error', (error) => done({ kind: 'error', error }));
    socket.once('close', () =>
      done(
        connectMs === null
          ? {
              kind: 'error',
              error: Object.assign(new Error('socket closed'), { code: 'ECONNRESET' }),
            }
          : { kind: 'closed', connectMs },
      ),
    );
  });
}
