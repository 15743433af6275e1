/**
 * The socket factory for postgres.js (the driver hook): every socket to the database goes
 * through the connect gate (./connect-gate: a hard bound, backoff, nothing new while the path
 * is stalled), is counted, and has its wire framing followed to know when it is busy; the stall
 * watch (./stall-watch, ./path-watch) decides when a silent one is given up, and ./close-reason
 * why one closed (docs/design/database-path.md).
 */
import net from 'node:net';
import type { Logger } from '../logger';
import type { DbStats } from '../metrics/db-stats';
import { closeReason } from './close-reason';
import { createConnectGate, type Slot } from './connect-gate';
import { createHostPicker } from './hosts';
import { createPathWatch, type PathWatch } from './path-watch';
import { startSslProbe } from './ssl-probe';
import { shouldDestroy } from './stall-watch';
import { createMessageReader, firstMessage } from './wire';

export interface SocketFactoryDeps {
  /** The URL's hosts; with more than one, see ./hosts. */
  hosts: ReadonlyArray<{ host: string; port: number }>;
  stats: DbStats;
  logger: Logger;
  /** A connection with unanswered bytes for longer than this is destroyed. */
  stallMs: number;
  /** Lower bound of the per-connection idle timeout (s), to tell idle closes from lifetime ones. */
  idleTimeoutMinS: number | null;
  /** Lower bound of the per-connection lifetime (s); only TLS closes need it. */
  maxLifetimeMinS?: number | null;
  /** Pool connections per worker (DB_POOL_MAX): the gate allows one more socket, a probe's or a cancel's. */
  poolMax: number;
  /** Tells a stalled path from a slow query (./path-watch); defaults to an SSLRequest probe. */
  pathWatch?: (hooks: PathHooks) => PathWatch;
  now?: () => number;
  random?: () => number;
  /** Benchmarks only (KEEL_BENCH_ABLATE=stall-watch): false runs no watchdog at all. */
  stallWatch?: boolean;
}

export interface PathHooks {
  onStall: () => void;
  onHeal: (since: number) => void;
}

type Framing = 'startup' | 'ssl-answer' | 'messages' | 'opaque';

interface Tracked {
  socket: net.Socket;
  /** The short-lived socket of a cancel request, not a pool connection. */
  cancel: boolean;
  id: number;
  openedAt: number;
  lastActivity: number;
  awaitingSince: number | null;
  lastRead: number;
  busy: boolean;
  /** How the bytes read are interpreted: see `onWrite`. */
  framing: Framing;
  tls: boolean;
  read: (chunk: Buffer, from?: number) => void;
  established: boolean;
  peerEnded: boolean;
  closedByUs: boolean;
  stalled: boolean;
  /** The server has sent at least one byte on this socket. */
  answered: boolean;
  /** TLS only: byte counters as last seen, and the activity before the last change seen. */
  bytesRead: number;
  bytesWritten: number;
  activityBefore: number;
  /** TLS only: the last change seen was no bigger than a goodbye (see `GOODBYE`). */
  goodbyeSized: boolean;
  error: string | null;
  fatal: { code: string; message: string } | null;
  /** Which of the hosts it went to. */
  hostIndex: number;
  /** ReadyForQuery messages seen: 1-2 means the session never ran a query of ours. */
  readies: number;
  /** A query was refused with 25006: this server is no longer the primary. */
  readOnly: boolean;
  /** Its place under the connect gate's bound, freed when the socket has closed. */
  slot: Slot;
}

// The most a TLS goodbye moves (docs/design/database-path.md): Terminate and close alert out,
// the server's close alert in (24). Any query moves more: its answer alone reads more than 32.
const GOODBYE = { written: 64, read: 32 };
// A cancel request is answered by the server closing its socket at once; one still open after
// this holds the gate's spare slot for nothing.
const CANCEL_MAX_MS = 1000;
const TOO_MANY_CONNECTIONS = '53300';

export interface SocketFactory {
  (): Promise<net.Socket>;
  /** Runs `send` (which asks for one socket, synchronously) as a cancel request: no queueing. */
  asCancel<T>(send: () => T): T;
  /** Marks the pool as ending: closes from now on count as `shutdown`. */
  ending(): void;
  /** Stops the stall watchdog. */
  stop(): void;
  /** The path to the database is known stalled (readiness answers 503). */
  pathStalled(): boolean;
  /** Calls `listener` each time a stalled path answers again (after the victims are replaced). */
  onPathHealed(listener: () => void): void;
}

const IDLE = 0x49; // 'I': ReadyForQuery outside a transaction
// A write refused by a server that is (now) a standby, e.g. the old primary after a failover.
const READ_ONLY_SQL_TRANSACTION = '25006';

export function createSocketFactory(deps: SocketFactoryDeps): SocketFactory {
  const { stats, logger } = deps;
  const now = deps.now ?? Date.now;
  const live = new Set<Tracked>();
  let nextId = 1;
  let shuttingDown = false;
  let cancelling = false;

  // 20 checks a second: the path watch's suspicion is acted on at most 50 ms late (a loop over
  // the pool's few sockets; the one-second startup limit and TLS activity read from byte
  // counters are caught well inside their limits too).
  const tick = 50;
  const watchdog = deps.stallWatch === false ? undefined : setInterval(checkSockets, tick);
  watchdog?.unref();
  // Last time any connection read a byte: a path that answers anyone is not stalled.
  let lastReadAny = now();
  const healListeners: Array<() => void> = [];
  const hosts = createHostPicker(deps.hosts);
  const gate = createConnectGate({
    limit: deps.poolMax + 1,
    random: deps.random,
    now,
    onAttempt: (outcome) => {
      stats.connectAttempts[outcome] += 1;
    },
    onConnecting: (n) => {
      stats.connectingMax = Math.max(stats.connectingMax, n);
    },
  });
  const hooks: PathHooks = {
    onStall: () => gate.hold(true),
    onHeal: () => {
      gate.hold(false);
      for (const listener of healListeners) listener();
    },
  };
  const path =
    deps.pathWatch?.(hooks) ??
    createPathWatch({
      probe: () => {
        const slot = gate.tryAcquire();
        if (!slot) return null;
        const socket = net.connect(hosts.current());
        socket.once('close', () => slot.release());
        return startSslProbe(socket);
      },
      ...hooks,
      logger,
      now,
    });

  function destroyStalled(c: Tracked, t: number): void {
    c.stalled = true;
    logger.warn('db connection stalled, destroying it', {
      conn: c.id,
      waitedMs: t - (c.awaitingSince ?? t),
      ...(c.answered ? {} : { startup: true }),
    });
    const err = Object.assign(new Error('database connection stalled: no answer from the server'), {
      code: 'KEEL_STALLED',
    });
    c.socket.destroy(err);
  }

  function checkSockets(): void {
    const t = now();
    stats.connecting = gate.connecting();
    // How long the longest-waiting connection has heard nothing, if no one else heard anything.
    let silent = 0;
    for (const c of live) {
      if (c.tls || c.cancel || c.stalled || c.awaitingSince === null) continue;
      silent = Math.max(silent, t - Math.max(c.awaitingSince, c.lastRead));
    }
    path.tick(Math.min(silent, t - lastReadAny));
    for (const c of live) {
      // Bytes went out without a write through us: the driver negotiated TLS directly.
      if (c.framing === 'startup' && c.socket.bytesWritten > 0) unreadable(c);
      if (c.cancel) {
        if (t - c.openedAt > CANCEL_MAX_MS && !c.socket.destroyed) c.socket.destroy();
        continue;
      }
      if (c.tls) {
        const read = c.socket.bytesRead - c.bytesRead;
        const written = c.socket.bytesWritten - c.bytesWritten;
        if (read !== 0 || written !== 0) {
          c.bytesRead += read;
          c.bytesWritten += written;
          c.goodbyeSized = read <= GOODBYE.read && written <= GOODBYE.written;
          c.activityBefore = c.lastActivity;
          c.lastActivity = t;
        }
        continue;
      }
      if (c.stalled) continue;
      if (shouldDestroy(c, path, t, deps.stallMs)) destroyStalled(c, t);
    }
  }

  function setBusy(c: Tracked, busy: boolean): void {
    if (c.busy === busy) return;
    c.busy = busy;
    stats.busy += busy ? 1 : -1;
    stats.idle += busy ? -1 : 1;
  }

  /** The first bytes we send say how to read the server's: plain protocol, TLS, or neither. */
  function onWrite(c: Tracked, data: unknown): void {
    const t = now();
    c.lastActivity = t;
    if (c.framing === 'startup') {
      const kind = firstMessage(data);
      if (kind === 'ssl-request') c.framing = 'ssl-answer';
      else if (kind === 'startup' || kind === 'cancel') c.framing = 'messages';
      else unreadable(c);
      c.cancel = kind === 'cancel';
    }
    if (c.tls) return;
    if (c.awaitingSince === null) c.awaitingSince = t;
    setBusy(c, true);
  }

  /** From here on the bytes are encrypted: activity comes from the byte counters. */
  function unreadable(c: Tracked): void {
    c.framing = 'opaque';
    c.tls = true;
    c.awaitingSince = null;
    c.bytesRead = c.socket.bytesRead;
    c.bytesWritten = c.socket.bytesWritten;
  }

  function onData(c: Tracked, chunk: Buffer): void {
    const t = now();
    c.answered = true;
    c.lastRead = t;
    lastReadAny = t;
    c.lastActivity = t;
    if (!c.cancel) path.heard();
    let i = 0;
    if (c.framing === 'ssl-answer' && chunk.length > 0) {
      // 'S': the driver wraps this socket in TLS next. 'N' (sslmode=prefer): plain from here on.
      if (chunk[0] === 0x53) {
        unreadable(c);
        setBusy(c, false);
        // Encrypted from here: the server answered, that is as far as the attempt can be seen.
        c.slot.settle('opened');
        return;
      }
      c.framing = 'messages';
      i = 1;
    }
    if (c.framing !== 'messages') {
      c.awaitingSince = null;
      return;
    }
    c.read(chunk, i);
  }

  function onClose(c: Tracked, hadError: boolean): void {
    if (!live.delete(c)) return;
    // Not reached, or not the primary (the driver ends a standby's session before any query).
    const notPrimary = c.readOnly || (c.closedByUs && c.readies <= 2 && !shuttingDown);
    if (!c.cancel && (!c.established || notPrimary)) hosts.failed(c.hostIndex);
    if (c.busy) stats.busy -= 1;
    else stats.idle -= 1;
    stats.open -= 1;
    // Closed before the server took it: refused (no TCP connection, or a FATAL answer) or silent.
    // A cancel's socket is no connect attempt of the pool's: it never moves the backoff.
    c.slot.settle(c.cancel ? 'opened' : !c.established || c.answered ? 'refused' : 'silent');
    c.slot.release();
    if (c.framing === 'startup' && c.socket.bytesWritten > 0) unreadable(c);
    const t = now();
    const reason = closeReason(
      { ...c, fatal: c.fatal !== null },
      {
        now: t,
        hadError,
        shuttingDown,
        idleTimeoutMinS: deps.idleTimeoutMinS,
        maxLifetimeMinS: deps.maxLifetimeMinS ?? null,
      },
    );
    stats.closed[reason] += 1;
    logger.info('db connection closed', {
      conn: c.id,
      reason,
      ageS: seconds(t - c.openedAt),
      idleS: seconds(t - c.lastActivity),
      ...(c.established ? {} : { established: false }),
      ...(c.tls ? { tls: true } : {}),
      ...(c.error ? { error: c.error } : {}),
      ...(c.fatal ? { serverCode: c.fatal.code, serverMessage: c.fatal.message } : {}),
    });
  }

  /** A socket for the driver: a pool connection waits for the gate, a cancel does not. */
  const factory = (async () => {
    const cancel = cancelling;
    cancelling = false;
    let slot: Slot;
    if (cancel) {
      const spare = gate.tryAcquire();
      // No spare slot (a probe holds it, or the path is stalled): the cancel is sent again.
      if (!spare || path.stalledSince() !== null) {
        spare?.release();
        throw Object.assign(new Error('no connection slot for a cancel request now'), {
          code: 'KEEL_CANCEL_DEFERRED',
        });
      }
      slot = spare;
    } else {
      slot = await gate.acquire();
    }
    return connect(slot, cancel);
  }) as SocketFactory;

  function connect(slot: Slot, cancel: boolean): net.Socket {
    const target = hosts.pick();
    const socket = net.connect({ host: target.host, port: target.port });
    const t = now();
    const c: Tracked = {
      socket,
      slot,
      cancel,
      id: nextId++,
      openedAt: t,
      lastActivity: t,
      awaitingSince: null,
      lastRead: t,
      busy: false,
      framing: 'startup',
      tls: false,
      read: () => undefined,
      established: false,
      peerEnded: false,
      closedByUs: false,
      stalled: false,
      answered: false,
      bytesRead: 0,
      bytesWritten: 0,
      activityBefore: t,
      goodbyeSized: false,
      error: null,
      fatal: null,
      hostIndex: target.index,
      readies: 0,
      readOnly: false,
    };
    c.read = createMessageReader({
      ready(status) {
        c.awaitingSince = null;
        c.readies += 1;
        c.slot.settle('opened');
        setBusy(c, status !== IDLE);
        // The caller has its 25006 (and retries it); this session is of no more use.
        if (c.readOnly && status === IDLE) setImmediate(() => c.socket.destroy());
      },
      error(code) {
        if (code === READ_ONLY_SQL_TRANSACTION) c.readOnly = true;
      },
      fatal(code, message) {
        c.fatal = { code, message };
        if (code === TOO_MANY_CONNECTIONS) c.slot.settle('too_many_clients');
      },
    });
    live.add(c);
    stats.open += 1;
    stats.idle += 1;
    stats.opened += 1;
    logger.info('db connection opened', { conn: c.id, ...(cancel ? { cancel: true } : {}) });
    const emit = socket.emit as (
      this: net.Socket,
      event: string | symbol,
      ...a: unknown[]
    ) => boolean;
    socket.emit = function (this: net.Socket, event: string | symbol, ...args: unknown[]) {
      if (event === 'data') onData(c, args[0] as Buffer);
      else if (event === 'connect') c.established = true;
      else if (event === 'end') c.peerEnded = true;
      else if (event === 'error') c.error = errorCode(args[0]);
      else if (event === 'close') onClose(c, args[0] === true);
      return emit.apply(this, [event, ...args]);
    } as net.Socket['emit'];
    const write = socket.write;
    socket.write = function (this: net.Socket, ...args: Parameters<net.Socket['write']>) {
      onWrite(c, args[0]);
      return write.apply(this, args);
    } as net.Socket['write'];
    const end = socket.end;
    socket.end = function (this: net.Socket, ...args: unknown[]) {
      // Node ends the socket itself after the peer's FIN: that close is the peer's, not ours.
      if (!c.peerEnded) c.closedByUs = true;
      return (end as (...a: unknown[]) => net.Socket).apply(this, args);
    } as net.Socket['end'];
    socket.on('error', () => undefined); // the driver's own listener reports it
    return socket;
  }

  factory.ending = () => {
    shuttingDown = true;
  };
  factory.asCancel = (send) => {
    cancelling = true;
    try {
      return send();
    } finally {
      cancelling = false;
    }
  };
  factory.stop = () => {
    clearInterval(watchdog);
    path.stop();
    gate.close();
  };
  factory.pathStalled = () => path.stalledSince() !== null;
  factory.onPathHealed = (listener) => healListeners.push(listener);
  return factory;
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'unknown';
}

function seconds(ms: number): number {
  return Math.round(ms / 100) / 10;
}
