/**
 * `--idle-probe`: measures how long an idle connection survives on this path. K connections
 * without keepalive idle for the rungs of a ladder up to --max, all at once; then K more
 * bisect between the longest survivor and the shortest death until the bracket is narrow.
 * Beside the last rounds, connections with keepalive at DB_KEEPALIVE_S idle past the cutoff.
 */
import type { Config } from '../../config/config';
import type { Clients } from '../../db/probe-clients';
import { openIdleConn, type IdleConn } from './idle-conn';
import { bisect, bracket, ladder, tolerance } from './idle-plan';
import type { DeathKind, IdleProbeResult, IdleSample, KeepaliveResult } from './idle-types';

export interface IdleProbeOptions {
  maxMs: number;
  connections: number;
  probeTimeoutMs: number;
  signal: AbortSignal;
  progress(line: string): void;
  /** Seconds between progress lines while waiting. */
  heartbeatMs?: number;
}

const MAX_ROUNDS = 8;
const s = (ms: number) => `${(ms / 1000).toFixed(ms < 10000 ? 2 : 0)} s`;

function aborted(signal: AbortSignal): Error {
  return Object.assign(new Error('idle probe interrupted'), {
    name: 'AbortError',
    cause: signal.reason,
  });
}

/** Waits until the connection has idled `idleMs`, died, or `stop()` says the rung is moot. */
async function waitIdle(
  conn: IdleConn,
  start: number,
  idleMs: number,
  stop: () => boolean,
  signal: AbortSignal,
): Promise<'due' | 'died' | 'moot'> {
  for (;;) {
    if (signal.aborted) throw aborted(signal);
    if (conn.death) return 'died';
    if (stop()) return 'moot';
    const left = start + idleMs - performance.now();
    if (left <= 0) return 'due';
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      conn.died,
      new Promise((r) => (timer = setTimeout(r, Math.min(left, 100)))),
    ]);
    clearTimeout(timer);
  }
}

export async function runIdleProbe(
  config: Config,
  clients: Clients,
  opts: IdleProbeOptions,
): Promise<IdleProbeResult> {
  const samples: IdleSample[] = [];
  const t0 = performance.now();
  let minDeath: number | null = null;
  const status = () => {
    const b = bracket(samples);
    return b.hi === null
      ? `longest survivor ${s(b.lo)}, nothing cut yet`
      : `bracket ${s(b.lo)} .. ${s(b.hi)}`;
  };
  const heartbeat = setInterval(
    () => opts.progress(`idle probe: ${s(performance.now() - t0)} elapsed, ${status()}`),
    opts.heartbeatMs ?? 15000,
  );
  heartbeat.unref();

  /** One connection's wait and probe; its sample joins `samples` at once (progress shows it). */
  async function rung(idleMs: number, keepAliveS: number | null): Promise<void> {
    const conn = await openIdleConn(config, clients, keepAliveS);
    try {
      const start = conn.heardAt;
      const moot = () => keepAliveS === null && minDeath !== null && idleMs > minDeath;
      const why = await waitIdle(conn, start, idleMs, moot, opts.signal);
      if (why === 'moot') return;
      const r = await conn.probe(opts.probeTimeoutMs);
      const diedAtMs = r.alive ? null : Math.round(r.at - conn.askedAt);
      const sample: IdleSample = { idleMs, alive: r.alive, death: r.kind, diedAtMs, keepAliveS };
      if (!r.alive && keepAliveS === null) minDeath = Math.min(minDeath ?? Infinity, diedAtMs!);
      opts.progress(
        `idle probe: ${keepAliveS ? `with keepalive ${keepAliveS} s, ` : ''}${r.alive ? `alive after ${s(idleMs)}` : `cut at ${s(diedAtMs!)} (${r.kind})`}`,
      );
      samples.push(sample);
    } finally {
      await conn.close();
    }
  }

  async function round(idles: number[], keepAliveS: number | null): Promise<void> {
    await Promise.all(idles.map((idle) => rung(idle, keepAliveS)));
  }

  try {
    const k = opts.connections;
    const first = ladder(opts.maxMs, k);
    opts.progress(`idle probe: round 1, ${k} connections idle for ${first.map(s).join(', ')}`);
    await round(first, null);
    let b = bracket(samples);
    let rounds = 1;
    let keepalive: Promise<unknown> | null = null;
    let kaIdle = 0;
    if (b.hi !== null) {
      // Keepalive connections idle half as long again as the first death: past any cutoff seen.
      kaIdle = Math.min(opts.maxMs, Math.max(Math.round(b.hi * 1.5), b.hi + 1000));
      // Settled later; a failure here must not go unhandled meanwhile (it then reports no keepalive).
      keepalive = round([kaIdle, kaIdle], config.db.keepAliveS).catch(() => undefined);
    }
    while (b.hi !== null && b.hi - b.lo > tolerance(b.hi) && rounds < MAX_ROUNDS) {
      rounds += 1;
      opts.progress(`idle probe: round ${rounds}, ${status()}`);
      minDeath = null;
      await round(bisect(b.lo, b.hi, k), null);
      b = bracket(samples);
    }
    await keepalive;
    if (opts.signal.aborted) throw aborted(opts.signal);
    return summarize(samples, b, { ...opts, rounds, kaIdle, keepAliveS: config.db.keepAliveS });
  } finally {
    clearInterval(heartbeat);
  }
}

function commonest(kinds: DeathKind[]): DeathKind | null {
  const n = new Map<DeathKind, number>();
  for (const k of kinds) n.set(k, (n.get(k) ?? 0) + 1);
  return [...n].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
}

function summarize(
  samples: IdleSample[],
  b: { lo: number; hi: number | null },
  o: IdleProbeOptions & { rounds: number; kaIdle: number; keepAliveS: number },
): IdleProbeResult {
  const plain = samples.filter((x) => x.keepAliveS === null);
  const death = commonest(plain.filter((x) => !x.alive).map((x) => x.death!));
  const ka = samples.filter((x) => x.keepAliveS !== null);
  const keepalive: KeepaliveResult | null = ka.length
    ? {
        keepAliveS: o.keepAliveS,
        idleMs: o.kaIdle,
        survived: ka.every((x) => x.alive),
        death: commonest(ka.filter((x) => !x.alive).map((x) => x.death!)),
      }
    : null;
  const hi = b.hi;
  return {
    cutoffMs: hi === null ? null : Math.round((b.lo + hi) / 2),
    bracketMs: hi === null ? null : [b.lo, hi],
    death,
    serverSide: death === 'server-timeout',
    keepalive,
    // Keel's timers run at 50-95 % of DB_IDLE_CUTOFF_S: the longest survival, in whole seconds, is safe.
    recommendedIdleCutoffS: hi === null ? null : Math.max(2, Math.floor(b.lo / 1000)),
    maxMs: o.maxMs,
    connectionsPerRound: o.connections,
    rounds: o.rounds,
    toleranceMs: hi === null ? 0 : tolerance(hi),
    samples,
  };
}
