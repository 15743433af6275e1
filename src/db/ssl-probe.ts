/**
 * One path probe: an SSLRequest on a fresh connection, answered by the server (or PgBouncer)
 * with one byte before any authentication. It can be resent on the same socket while it waits,
 * so a path that lost the first request is heard as soon as it carries one again.
 */
import type net from 'node:net';
import { SSL_REQUEST } from './ssl-request';

export const PROBE_OUTCOMES = ['answered', 'refused', 'abandoned'] as const;
export type ProbeOutcome = (typeof PROBE_OUTCOMES)[number];

export interface Probe {
  /** answered: a byte came back; refused: the connection failed or was closed by the far end. */
  readonly answered: Promise<ProbeOutcome>;
  /** The TCP connection is established (to the server or a proxy in front of it). */
  connected(): boolean;
  /** Sends the request again (once connected). */
  resend(): void;
  /** Gives up: closes the socket; `answered` settles as `abandoned` if it has not settled. */
  abandon(): void;
}

export function startSslProbe(socket: net.Socket): Probe {
  let isConnected = false;
  let settle!: (outcome: ProbeOutcome) => void;
  const answered = new Promise<ProbeOutcome>((resolve) => {
    let done = false;
    settle = (outcome) => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve(outcome);
    };
  });
  socket.once('connect', () => {
    isConnected = true;
    socket.write(SSL_REQUEST);
  });
  socket.once('data', () => settle('answered'));
  socket.on('error', () => settle('refused'));
  socket.once('close', () => settle('refused'));
  return {
    answered,
    connected: () => isConnected,
    resend() {
      if (isConnected && !socket.destroyed) socket.write(SSL_REQUEST);
    },
    abandon: () => settle('abandoned'),
  };
}
