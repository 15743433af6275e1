/**
 * One dedicated connection of the idle probe: opened, left idle, then probed with a bounded
 * `select 1`. Its raw socket is watched (events observed by wrapping `emit`, since the driver
 * removes listeners) so a close while idle is seen when it happens, with its kind.
 */
import net from 'node:net';
import type { Config } from '../../config/config';
import { createMessageReader } from '../../db/wire';
import type { Clients, Sql } from '../../db/probe-clients';
import { describeUrl } from './connections';
import type { DeathKind } from './idle-types';

export interface IdleConn {
  /**
   * When the last query was asked and when its answer was heard (performance.now() ms). The
   * server or proxy started its idle clock between the two: a survival counts from `heardAt`,
   * a death from `askedAt`, so the bracket holds the true cutoff even when this process is slow.
   */
  readonly askedAt: number;
  readonly heardAt: number;
  /** Set once the connection is seen dead. */
  readonly death: { kind: DeathKind; at: number } | null;
  /** Resolves when a death is seen while idle. */
  readonly died: Promise<void>;
  probe(timeoutMs: number): Promise<{ alive: boolean; kind: DeathKind | null; at: number }>;
  close(): Promise<void>;
}

const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

export async function openIdleConn(
  config: Config,
  clients: Clients,
  keepAliveS: number | null,
): Promise<IdleConn> {
  // With several hosts the probe measures the path to the first, where the workers go first.
  const { host, port } = describeUrl(config.db.url).hosts[0]!;
  let raw: net.Socket | null = null;
  let death: { kind: DeathKind; at: number } | null = null;
  let fatal: string | null = null;
  let probing = false;
  let markDied: () => void = () => undefined;
  const died = new Promise<void>((r) => (markDied = r));
  const die = (kind: DeathKind) => {
    if (death || probing) return;
    death = { kind, at: performance.now() };
    markDied();
  };
  // Plain TCP only: the server's FATAL (57P05 idle_session_timeout) is read off the wire.
  const reader = config.db.ssl
    ? null
    : createMessageReader({ ready: () => undefined, fatal: (code) => (fatal = code) });
  const fromServer = (kind: 'fin' | 'rst'): DeathKind =>
    fatal === '57P05' ? 'server-timeout' : fatal ? 'server-closed' : kind;

  const socket = () => {
    const s = net.connect({ host, port });
    Object.assign(s, { host }); // the driver reads it for TLS SNI
    const emit = s.emit.bind(s);
    s.emit = (event: string | symbol, ...args: unknown[]): boolean => {
      if (event === 'data') {
        if (reader) reader(args[0] as Buffer);
      } else if (event === 'end') die(fromServer('fin'));
      else if (event === 'error') {
        const code = (args[0] as { code?: string } | undefined)?.code ?? '';
        die(RESET_CODES.has(code) ? fromServer('rst') : 'rst');
      } else if (event === 'close') die(fromServer('fin'));
      return emit(event, ...args);
    };
    raw = s;
    return s;
  };
  const sql: Sql = clients.open(config.db.url, {
    socket,
    // keep_alive 0 means no TCP keepalive at all: the probe measures the path, not keepalive.
    keep_alive: keepAliveS ?? 0,
    prepare: false,
  } as never);
  const askedAt = performance.now();
  await sql`select 1`;
  // Read once the answer is in hand: no earlier than the server went idle.
  const heardAt = performance.now();

  return {
    askedAt,
    heardAt,
    get death() {
      return death;
    },
    died,
    async probe(timeoutMs) {
      if (death) return { alive: false, kind: death.kind, at: death.at };
      probing = true;
      const at = performance.now();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>(
        (r) => (timer = setTimeout(() => r('timeout'), timeoutMs)),
      );
      try {
        const answer = await Promise.race([sql`select 1`.then(() => 'ok' as const), timeout]);
        if (answer === 'ok') return { alive: true, kind: null, at };
        return { alive: false, kind: 'silence', at };
      } catch (err) {
        const code = (err as { code?: string }).code ?? '';
        if (fatal) return { alive: false, kind: fromServer('fin'), at };
        return { alive: false, kind: RESET_CODES.has(code) ? 'rst-on-write' : 'fin', at };
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      // The driver ends its own socket first (over TLS the raw one lies beneath it).
      await sql.end({ timeout: 0 }).catch(() => undefined);
      (raw as net.Socket | null)?.destroy();
    },
  };
}
