/** Tracks an HTTP server's sockets and in-flight requests, so shutdown can drain them. */
import type http from 'node:http';
import type net from 'node:net';

export interface ConnectionTracker {
  inFlight(): number;
  sockets(): number;
  /** Resolves when no socket is left open. */
  whenClosed(): Promise<void>;
  destroyAll(): void;
  /** Ends (FIN) sockets with no request in progress that have been idle at least `idleMs`. */
  endIdle(idleMs: number): number;
}

interface SocketState {
  active: number;
  idleSince: number;
}

export function trackConnections(
  server: http.Server,
  now: () => number = Date.now,
): ConnectionTracker {
  const sockets = new Map<net.Socket, SocketState>();
  let inFlight = 0;
  let waiters: Array<() => void> = [];

  const settle = () => {
    if (sockets.size > 0) return;
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };

  server.on('connection', (socket: net.Socket) => {
    sockets.set(socket, { active: 0, idleSince: now() });
    socket.once('close', () => {
      sockets.delete(socket);
      settle();
    });
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    inFlight += 1;
    const state = sockets.get(req.socket);
    if (state) state.active += 1;
    res.once('close', () => {
      inFlight -= 1;
      if (state) {
        state.active -= 1;
        state.idleSince = now();
      }
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
      for (const s of sockets.keys()) s.destroy();
    },
    endIdle(idleMs) {
      const t = now();
      let ended = 0;
      for (const [socket, state] of sockets) {
        if (state.active > 0 || t - state.idleSince < idleMs || socket.writableEnded) continue;
        socket.end();
        ended += 1;
      }
      return ended;
    },
  };
}
