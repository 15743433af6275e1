/**
 * An in-process TCP proxy between the app and Postgres, for fault-injection tests.
 *
 * It forwards bytes chunk by chunk (no `pipe`) so it can stall, drop, cut and reset
 * connections the way a flaky network or a hosted TCP proxy (Railway's idle cutoff) does.
 */
import net from 'node:net';

export type FaultMode = 'pass' | 'refuse' | 'blackhole' | 'partition' | 'hold';
export type CloseHow = 'fin' | 'rst';
/** How the idle cutoff ends a pair: close it (FIN or RST), or `silent`: drop its bytes from then on. */
export type IdleCutHow = CloseHow | 'silent';

export interface FaultProxyOptions {
  targetHost: string;
  targetPort: number;
}

export interface FaultProxyStats {
  /** Connection pairs currently open. */
  open: number;
  /** Client connections taken on as pairs (refused ones are not counted here). */
  accepted: number;
  /** Pairs closed by the idle cutoff. */
  idleCuts: number;
  /** Pairs closed by `resetAll`. */
  resets: number;
  /** Client connections reset on arrival in `refuse` mode. */
  refused: number;
}

export interface FaultProxy {
  readonly port: number;
  readonly host: '127.0.0.1';
  /** `sourceUrl` with its host and port replaced by the proxy's. */
  url(sourceUrl: string): string;
  /**
   * pass: forward. refuse: reset new client connections at once (open ones keep working).
   * blackhole: keep every socket open but drop all bytes both ways, for new connections too.
   * partition: a blackhole that loses closes too: a side that ends or resets its socket
   * leaves the other side's open, as a dead network path would (the server never learns).
   * hold: a platform proxy whose upstream stalls: it keeps accepting client connections but
   * connects none upstream, and holds every byte and every close both ways; leaving `hold`
   * delivers all of it in order (new connections reach the server then, all at once).
   */
  setMode(mode: FaultMode): void;
  /**
   * Closes pairs with no bytes either way for longer than `ms` (or, `silent`, blackholes them
   * for good, as a NAT that forgot the flow does); null disables.
   */
  setIdleCut(ms: number | null, how?: IdleCutHow): void;
  /** Closes every open pair now. */
  resetAll(how?: CloseHow): void;
  stats(): FaultProxyStats;
  connections(): number;
  /** Destroys every socket and closes the listener. Idempotent. */
  close(): Promise<void>;
}

/** What a side did while the proxy held it: delivered in order when the hold ends. */
type Held = { data: Buffer } | { end: true } | { reset: true };

interface Pair {
  client: net.Socket;
  /** Null while a connection accepted in `hold` waits for the hold to end. */
  upstream: net.Socket | null;
  /** Held events, per direction. */
  held: { toUpstream: Held[]; toClient: Held[] };
  lastActivity: number;
  /** Cut silently by the idle cutoff: its bytes are dropped from then on. */
  silent: boolean;
}

// A FIN close waits this long for the peer's FIN before destroying the socket.
const FIN_GRACE_MS = 1000;

export async function createFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const pairs = new Set<Pair>();
  const sockets = new Set<net.Socket>();
  const counters = { accepted: 0, idleCuts: 0, resets: 0, refused: 0 };
  let mode: FaultMode = 'pass';
  let idleSweep: NodeJS.Timeout | null = null;
  let closing: Promise<void> | null = null;

  const track = (socket: net.Socket): void => {
    sockets.add(socket);
    // Resets and refused connects are expected here; an unhandled 'error' would crash Jest.
    socket.on('error', () => undefined);
    socket.once('close', () => sockets.delete(socket));
  };

  const reset = (socket: net.Socket): void => {
    if (!socket.destroyed) socket.resetAndDestroy();
  };

  const finish = (socket: net.Socket): void => {
    if (socket.destroyed) return;
    socket.end();
    const timer = setTimeout(() => socket.destroy(), FIN_GRACE_MS).unref();
    socket.once('close', () => clearTimeout(timer));
  };

  const closePair = (pair: Pair, how: CloseHow): void => {
    if (!pairs.delete(pair)) return;
    const close = how === 'rst' ? reset : finish;
    close(pair.client);
    if (pair.upstream) close(pair.upstream);
  };

  /** Writes one event to `to`; false when the writer should pause. */
  const deliver = (to: net.Socket, event: Held): boolean => {
    if ('data' in event) return to.destroyed || to.write(event.data);
    if ('end' in event) finish(to);
    else reset(to);
    return true;
  };

  const upstreamOf = (pair: Pair): net.Socket => {
    if (pair.upstream) return pair.upstream;
    const upstream = net.connect({ host: opts.targetHost, port: opts.targetPort, noDelay: true });
    track(upstream);
    pair.upstream = upstream;
    forward(pair, upstream, pair.client, 'toClient');
    return upstream;
  };

  /** The hold ended: connect what waited and deliver what was held, in order. */
  const release = (): void => {
    for (const pair of [...held]) {
      held.delete(pair);
      const upstream = upstreamOf(pair);
      for (const event of pair.held.toUpstream.splice(0)) deliver(upstream, event);
      for (const event of pair.held.toClient.splice(0)) deliver(pair.client, event);
    }
  };
  const held = new Set<Pair>();

  const forward = (
    pair: Pair,
    from: net.Socket,
    to: net.Socket | null,
    way: 'toUpstream' | 'toClient',
  ): void => {
    const target = (): net.Socket => to ?? upstreamOf(pair);
    // In `hold` (or while a connection accepted in hold still waits), events queue up.
    const holding = () => mode === 'hold' || held.has(pair);
    const hold = (event: Held): void => {
      pair.held[way].push(event);
      held.add(pair);
    };
    from.on('data', (chunk: Buffer) => {
      pair.lastActivity = Date.now();
      if (holding()) return hold({ data: chunk });
      // A stalled proxy reads and loses bytes; buffering them would replay them on `pass`.
      if (mode === 'blackhole' || mode === 'partition' || pair.silent) return;
      const out = target();
      if (out.destroyed) return;
      if (!out.write(chunk) && !from.isPaused()) {
        from.pause();
        out.once('drain', () => from.resume());
      }
    });
    // A clean FIN travels on; an error (reset, refused upstream) becomes a reset on the other side.
    // In a partition nothing travels: the other side stays open until close().
    from.once('end', () => {
      if (holding()) return hold({ end: true });
      if (pairs.delete(pair) && mode !== 'partition') finish(target());
    });
    from.once('error', () => {
      if (holding()) return hold({ reset: true });
      pairs.delete(pair);
      if (mode !== 'partition') reset(target());
    });
    from.once('close', () => {
      if (holding()) return;
      if (pairs.delete(pair) && mode !== 'partition') finish(target());
    });
  };

  const onConnection = (client: net.Socket): void => {
    track(client);
    if (mode === 'refuse' || closing) {
      counters.refused += 1;
      reset(client);
      return;
    }
    counters.accepted += 1;
    client.setNoDelay(true);
    const pair: Pair = {
      client,
      upstream: null,
      held: { toUpstream: [], toClient: [] },
      lastActivity: Date.now(),
      silent: false,
    };
    pairs.add(pair);
    if (mode === 'hold') held.add(pair);
    else upstreamOf(pair);
    forward(pair, client, null, 'toUpstream');
  };

  const server = net.createServer(onConnection);
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('fault proxy has no TCP address');
  const port = address.port;

  const stopIdleSweep = (): void => {
    if (idleSweep) clearInterval(idleSweep);
    idleSweep = null;
  };

  return {
    port,
    host: '127.0.0.1',
    url(sourceUrl) {
      const url = new URL(sourceUrl);
      url.hostname = '127.0.0.1';
      url.port = String(port);
      return url.toString();
    },
    setMode(next) {
      const wasHolding = mode === 'hold';
      mode = next;
      if (wasHolding && next !== 'hold') release();
    },
    setIdleCut(ms, how = 'fin') {
      stopIdleSweep();
      if (ms === null) return;
      // Sweeping at a quarter of the cutoff closes a pair at most 25% late.
      const every = Math.max(5, Math.min(250, Math.floor(ms / 4)));
      idleSweep = setInterval(() => {
        const now = Date.now();
        for (const pair of [...pairs]) {
          if (pair.silent || now - pair.lastActivity <= ms) continue;
          counters.idleCuts += 1;
          if (how === 'silent') pair.silent = true;
          else closePair(pair, how);
        }
      }, every).unref();
    },
    resetAll(how = 'rst') {
      for (const pair of [...pairs]) {
        counters.resets += 1;
        closePair(pair, how);
      }
    },
    stats: () => ({ open: pairs.size, ...counters }),
    connections: () => pairs.size,
    close() {
      closing ??= new Promise<void>((resolve) => {
        stopIdleSweep();
        pairs.clear();
        held.clear();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}
