/**
 * Which of the URL's hosts new connections go to, and what each host is. One host at a time
 * (sticky), so a cancel request reaches the server of the query it cancels; the next host is
 * tried when a connection to the current one fails, or turns out not to be the primary (the
 * patched postgres.js asks each new session its role under target_session_attrs and ends a
 * standby's, PostgreSQL >= 14 included; a query answered 25006). One connect is one pass over
 * the hosts, then the query fails and the pool backs off (docs/failover.md).
 */
import postgres from 'postgres';
import { dbUrlParts, withHost } from '../config/db-url';
import type { DbRole, DbStats } from '../metrics/db-stats';
import { readReplication, type ReplicationState } from './replication';

export interface HostPicker {
  /** Index and address for the next connection. */
  pick(): { index: number; host: string; port: number };
  /** A connection to host `index` failed or found a standby: move on if it is still current. */
  failed(index: number): void;
  current(): { host: string; port: number };
}

export function createHostPicker(hosts: ReadonlyArray<{ host: string; port: number }>): HostPicker {
  if (hosts.length === 0) throw new Error('no database host');
  let index = 0;
  const at = (i: number) => hosts[i % hosts.length]!;
  return {
    pick: () => ({ index, ...at(index) }),
    failed(i) {
      if (i === index && hosts.length > 1) index = (index + 1) % hosts.length;
    },
    current: () => at(index),
  };
}

export type HostRole = 'primary' | 'standby' | 'read-only' | 'unreachable';

export interface HostState {
  /** host:port as in the URL. */
  address: string;
  role: HostRole;
  /** Why it is unreachable (a driver error code). */
  error?: string;
  /** With `replication: true`, what a primary or a standby says about replication. */
  replication?: ReplicationState;
}

export interface ProbeOptions {
  ssl: false | 'require' | 'prefer' | 'verify-full';
  /** Per host; the hosts are asked at once, so this bounds the whole probe. */
  timeoutS: number;
  /** Also read the replication state, on the same connection (`keel diagnose`). */
  replication?: boolean;
}

/**
 * Each host of `url` asked on its own short-lived connection whether it is in recovery: what a
 * not-ready worker logs ("host X is a standby") and what `keel diagnose` lists. One connection
 * per host, bounded by `timeoutS`.
 */
export async function probeHosts(url: string, opts: ProbeOptions): Promise<HostState[]> {
  return Promise.all(
    dbUrlParts(url).hosts.map(async ({ host, port }): Promise<HostState> => {
      const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
      // Whatever role the URL asks for, this connection must reach the host to ask it.
      const one = new URL(withHost(url, host, port));
      one.searchParams.delete('target_session_attrs');
      const sql = postgres(one.toString(), {
        max: 1,
        ssl: opts.ssl,
        connect_timeout: opts.timeoutS,
        fetch_types: false,
        onnotice: () => undefined,
        connection: { application_name: 'keel:probe' },
      });
      let timer: NodeJS.Timeout | undefined;
      try {
        const ask = async (): Promise<HostState> => {
          const [row] = await sql<{ recovery: boolean; read_only: string }[]>`
            select pg_is_in_recovery() as recovery, current_setting('transaction_read_only') as read_only`;
          const role: HostRole = row!.recovery
            ? 'standby'
            : row!.read_only === 'on'
              ? 'read-only'
              : 'primary';
          if (!opts.replication) return { address, role };
          // A role that may not read these views still has a role worth reporting.
          const replication = await readReplication(
            sql,
            role === 'standby' ? role : 'primary',
          ).catch(() => undefined);
          return replication ? { address, role, replication } : { address, role };
        };
        return await Promise.race([
          ask(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(Object.assign(new Error('no answer'), { code: 'TIMEOUT' })),
              opts.timeoutS * 1000,
            );
          }),
        ]);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        return { address, role: 'unreachable', error: typeof code === 'string' ? code : 'unknown' };
      } finally {
        clearTimeout(timer);
        await sql.end({ timeout: 1 }).catch(() => undefined);
      }
    }),
  );
}

/**
 * The role a unit of work's outcome says the server has: an answer (null) means the primary;
 * 25006 a server that refuses writes (the old primary, demoted or read-only); the patched
 * driver's TARGET_SESSION_ATTRS a pass that found only a standby. Other errors say nothing.
 */
function roleOf(outcome: unknown): DbRole | null {
  if (outcome === null) return 'primary';
  const e = outcome as { code?: unknown; role?: unknown } | undefined;
  if (e?.code === '25006') return 'read_only';
  if (e?.code === 'TARGET_SESSION_ATTRS') return e.role === 'standby' ? 'standby' : 'read_only';
  return null;
}

/** Counts a change of role (not the first sighting of a primary) for the flapping alert. */
export function noteRole(stats: Pick<DbStats, 'role' | 'roleChanges'>, outcome: unknown): void {
  const role = roleOf(outcome);
  if (role === null || role === stats.role) return;
  if (!(stats.role === 'unknown' && role === 'primary')) stats.roleChanges[role] += 1;
  stats.role = role;
}
