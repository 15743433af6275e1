/** The idle probe's result, as `--json` prints it under `idleProbe`. */

/**
 * How a connection cut while idle dies:
 * fin: the peer closed it (a FIN arrived while idle); rst: a reset arrived while idle;
 * rst-on-write: nothing arrived, the probe's write was answered with a reset;
 * silence: nothing arrived and the probe got no answer within its timeout (a blackhole);
 * server-timeout: the server's own idle_session_timeout (FATAL 57P05), not the proxy;
 * server-closed: the server ended the session with another FATAL error.
 */
export type DeathKind =
  'fin' | 'rst' | 'rst-on-write' | 'silence' | 'server-timeout' | 'server-closed';

export interface IdleSample {
  /** How long the connection was left idle before its probe (planned). */
  idleMs: number;
  alive: boolean;
  death: DeathKind | null;
  /** Idle time at which the death was seen (at the cut for fin/rst, at the probe otherwise). */
  diedAtMs: number | null;
  /** TCP keepalive interval of this connection in seconds, null when off. */
  keepAliveS: number | null;
}

export interface KeepaliveResult {
  keepAliveS: number;
  idleMs: number;
  /** The connection answered after idling past the cutoff with keepalive on. */
  survived: boolean;
  death: DeathKind | null;
}

export interface IdleProbeResult {
  /** The idle cutoff in ms (middle of the bracket); null when nothing was cut within --max. */
  cutoffMs: number | null;
  /** [longest idle survived, shortest idle that died] in ms; null when nothing died. */
  bracketMs: [number, number] | null;
  death: DeathKind | null;
  /** The cut came from the server's idle_session_timeout, not from a proxy. */
  serverSide: boolean;
  keepalive: KeepaliveResult | null;
  /** The DB_IDLE_CUTOFF_S to set (whole seconds the connection survived). */
  recommendedIdleCutoffS: number | null;
  maxMs: number;
  connectionsPerRound: number;
  rounds: number;
  toleranceMs: number;
  samples: IdleSample[];
}
