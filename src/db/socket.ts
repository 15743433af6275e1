/**
 * A socket factory for postgres.js that counts connections at the socket and destroys the ones
 * that stop answering (a proxy that stalls without closing: TCP keepalive never fires while
 * bytes are outstanding, so the driver would wait forever).
 *
 * For plain TCP it follows the protocol's message framing to know exactly when a connection is
 * busy (from the first write until ReadyForQuery 'I'). Over TLS the bytes are encrypted and the
 * TLS layer bypasses our hooks, so TLS sockets are counted open/closed but not busy/stalled;
 * keepalive and the statement timeout cover them.
 */
import net from 'node:net';
import type { Logger } from '../logger';
import type { CloseReason, DbStats } from '../metrics/db-stats';

export interface SocketFactoryDeps {
  host: string;
  port: number;
  stats: DbStats;
  logger: Logger;
  /** A connection with unanswered bytes for longer than this is destroyed. */
  stallMs: number;
  /** Lower bound of the per-connection idle timeout (s), to tell idle closes from lifetime ones. */
  idleTimeoutMinS: number | null;
  now?: () => number;
}

interface Tracked {
  socket: net.Socket;
  id: number;
  openedAt: number;
  lastActivity: number;
  awaitingSince: number | null;
  lastRead: number;
  busy: boolean;
  /** Bytes still to skip of the current server message, or -1 while reading a header. */
  header: Buffer;
  skip: number;
  zPending: boolean;
  closedByUs: boolean;
  stalled: boolean;
  parse: boolean;
}

export interface SocketFactory {
  (): net.Socket;
  /** Marks the pool as ending: closes from now on count as `shutdown`. */
  ending(): void;
  /** Stops the stall watchdog. */
  stop(): void;
  live(): number;
}

export function createSocketFactory(deps: SocketFactoryDeps): SocketFactory {
  const { stats, logger } = deps;
  const now = deps.now ?? Date.now;
  const live = new Set<Tracked>();
  let nextId = 1;
  let shuttingDown = false;

  // Check four times per stall window: a stalled socket is gone at most 25 % late.
  const watchdog = setInterval(checkStalls, Math.max(50, Math.floor(deps.stallMs / 4)));
  watchdog.unref();

  function checkStalls(): void {
    const t = now();
    for (const c of live) {
      if (c.awaitingSince === null || c.stalled) continue;
      if (t - Math.max(c.awaitingSince, c.lastRead) <= deps.stallMs) continue;
      c.stalled = true;
      logger.warn('db connection stalled, destroying it', {
        conn: c.id,
        waitedMs: t - c.awaitingSince,
      });
      const err = Object.assign(
        new Error('database connection stalled: no answer from the server'),
        {
          code: 'KEEL_STALLED',
        },
      );
      c.socket.destroy(err);
    }
  }

  function setBusy(c: Tracked, busy: boolean): void {
    if (c.busy === busy) return;
    c.busy = busy;
    stats.busy += busy ? 1 : -1;
  }

  function onData(c: Tracked, chunk: Buffer): void {
    const t = now();
    c.lastRead = t;
    c.lastActivity = t;
    if (!c.parse) {
      c.awaitingSince = null;
      return;
    }
    let i = 0;
    while (i < chunk.length) {
      if (c.skip > 0) {
        if (c.zPending) {
          c.zPending = false;
          setBusy(c, chunk[i] !== 0x49 /* I: idle, outside a transaction */);
        }
        const n = Math.min(c.skip, chunk.length - i);
        c.skip -= n;
        i += n;
        continue;
      }
      // Collect the 5-byte header (type + int32 length), which may straddle chunks.
      const need = 5 - c.header.length;
      c.header = Buffer.concat([c.header, chunk.subarray(i, i + need)]);
      i += Math.min(need, chunk.length - i);
      if (c.header.length < 5) break;
      const type = c.header[0];
      const length = c.header.readInt32BE(1);
      c.header = Buffer.alloc(0);
      c.skip = length - 4;
      if (type === 0x5a /* Z: ReadyForQuery; its status byte is read in the skip branch */) {
        c.awaitingSince = null;
        c.zPending = true;
      }
    }
  }

  function onClose(c: Tracked, hadError: boolean): void {
    if (!live.delete(c)) return;
    setBusy(c, false);
    stats.open -= 1;
    const reason = closeReason(c, hadError);
    stats.closed[reason] += 1;
    logger.info('db connection closed', {
      conn: c.id,
      reason,
      ageS: Math.round((now() - c.openedAt) / 100) / 10,
    });
  }

  function closeReason(c: Tracked, hadError: boolean): CloseReason {
    if (c.stalled) return 'stalled';
    if (shuttingDown) return 'shutdown';
    if (c.closedByUs) {
      const idleS = (now() - c.lastActivity) / 1000;
      if (deps.idleTimeoutMinS !== null && idleS >= deps.idleTimeoutMinS * 0.95)
        return 'idle_timeout';
      return 'max_lifetime';
    }
    return hadError ? 'network_error' : 'server_closed';
  }

  const factory = (() => {
    const socket = net.connect({ host: deps.host, port: deps.port, noDelay: true });
    const t = now();
    const c: Tracked = {
      socket,
      id: nextId++,
      openedAt: t,
      lastActivity: t,
      awaitingSince: null,
      lastRead: t,
      busy: false,
      header: Buffer.alloc(0),
      skip: 0,
      zPending: false,
      closedByUs: false,
      stalled: false,
      parse: true,
    };
    live.add(c);
    stats.open += 1;
    stats.opened += 1;
    logger.info('db connection opened', { conn: c.id });

    const write = socket.write;
    socket.write = function (this: net.Socket, ...args: Parameters<net.Socket['write']>) {
      const at = now();
      c.lastActivity = at;
      if (c.awaitingSince === null) c.awaitingSince = at;
      if (c.parse) setBusy(c, true);
      // An SSLRequest (8 bytes, code 80877103) switches to TLS: stop parsing from here on.
      const data = args[0];
      if (Buffer.isBuffer(data) && data.length === 8 && data.readInt32BE(4) === 80877103) {
        c.parse = false;
        setBusy(c, false);
      }
      return write.apply(this, args);
    } as net.Socket['write'];
    const end = socket.end;
    socket.end = function (this: net.Socket, ...args: unknown[]) {
      c.closedByUs = true;
      return (end as (...a: unknown[]) => net.Socket).apply(this, args);
    } as net.Socket['end'];

    socket.on('data', (chunk: Buffer) => onData(c, chunk));
    socket.on('close', (hadError: boolean) => onClose(c, hadError));
    socket.on('error', () => undefined); // the driver's own listener reports it
    return socket;
  }) as SocketFactory;

  factory.ending = () => {
    shuttingDown = true;
  };
  factory.stop = () => clearInterval(watchdog);
  factory.live = () => live.size;
  return factory;
}
