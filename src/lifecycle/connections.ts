/** Tracks an HTTP server's sockets and in-flight requests, so shutdown can drain them. */
import type http from 'node:http';
import type net from 'node:net';

export interface ConnectionTracker {
  inFlight(): number;
  sockets(): number;
  /** Resolves when no socket is left open. */
  whenClosed(): Promise<void>;
  destroyAll(): void;
}

export function trackConnections(server: http.Server): ConnectionTracker {
  const sockets = new Set<net.Socket>();
  let inFlight = 0;
  let waiters: Array<() => void> = [];

  const settle = () => {
    if (sockets.size > 0) return;
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };

  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      settle();
    });
  });
  server.on('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
    inFlight += 1;
    res.once('close', () => {
      inFlight -= 1;
    });
  });

  return {
    inFlight: () => inFlight,
    sockets: () => sockets.size,
    whenClosed() {
      if (sockets.size === 0) return Promise.resolve();
      return new Promise((resolve) => waiters.push(resolve));
    },
    destroyAll() {
      for (const s of sockets) s.destroy();
    },
  };
}
