/** What a failed connect means, in words a user can act on; a URL's parts for messages. */
import { dbUrlParts } from '../../config/db-url';

export interface ConnectFailure {
  /** A stable name for the failure, for `--json`. */
  kind:
    | 'wrong_password'
    | 'unknown_database'
    | 'unknown_role'
    | 'no_hba_entry'
    | 'tls_required'
    | 'refused'
    | 'unknown_host'
    | 'timeout'
    | 'too_many_connections'
    | 'other';
  summary: string;
  fix: string;
}

interface ErrLike {
  code?: unknown;
  message?: unknown;
}

/** What a failed connect means; `where` is user@host:port/db (never the password). */
export function explainConnectError(
  err: unknown,
  where: { user: string; db: string; hostPort: string },
): ConnectFailure {
  const e = (err ?? {}) as ErrLike;
  const code = typeof e.code === 'string' ? e.code : '';
  const msg = typeof e.message === 'string' ? e.message : String(err);
  const has = (re: RegExp) => re.test(msg);
  if (code === '28P01' || has(/password authentication failed/i))
    return {
      kind: 'wrong_password',
      summary: `the server refused the password of user "${where.user}"`,
      fix: 'check the password in the URL (a rotated credential? the platform variable copied whole?)',
    };
  if (code === '3D000' || has(/database "?[^"]*"? does not exist|no such database/i))
    return {
      kind: 'unknown_database',
      summary: `database "${where.db}" does not exist on ${where.hostPort}`,
      fix: 'fix the path of the URL (the part after the last /) or create the database',
    };
  if (has(/no pg_hba\.conf entry/i))
    return {
      kind: 'no_hba_entry',
      summary: `the server's pg_hba.conf has no entry for this client (${msg.slice(0, 160)})`,
      fix: 'connect with TLS (sslmode=require) if the entry is hostssl, or ask for an entry for this address',
    };
  if (has(/role "?[^"]*"? does not exist/i))
    return {
      kind: 'unknown_role',
      summary: `user "${where.user}" does not exist`,
      fix: 'fix the user name in the URL',
    };
  if (has(/does not support SSL|server does not support ssl/i))
    return {
      kind: 'tls_required',
      summary: `TLS is required (DB_SSL / sslmode) but ${where.hostPort} does not offer it`,
      fix: 'connect to the TLS endpoint of your database, or set DB_SSL=false on a private network',
    };
  if (code === 'ECONNREFUSED')
    return {
      kind: 'refused',
      summary: `nothing accepts connections at ${where.hostPort} (connection refused)`,
      fix: 'check the host and port of the URL; is the database (or its proxy) running?',
    };
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return {
      kind: 'unknown_host',
      summary: `the host of ${where.hostPort} does not resolve (${code})`,
      fix: 'check the host name; a private-network name resolves only inside the platform',
    };
  if (code === 'CONNECT_TIMEOUT' || code === 'ETIMEDOUT')
    return {
      kind: 'timeout',
      summary: `no answer from ${where.hostPort} within the connect timeout`,
      fix: 'a firewall or a wrong port drops packets; check the address and DB_CONNECT_TIMEOUT_S',
    };
  if (code === '53300')
    return {
      kind: 'too_many_connections',
      summary: 'the server has no free connection slot (53300)',
      fix: 'something holds every slot: see pg_stat_activity, lower DB_POOL_MAX or add PgBouncer',
    };
  return {
    kind: 'other',
    summary: `connect failed: ${code ? `${code} ` : ''}${msg.slice(0, 200)}`,
    fix: 'see the error above',
  };
}

/** user, database and host:port list of a URL, for messages (parsed as the workers parse it). */
export function describeUrl(url: string): {
  user: string;
  db: string;
  /** Every host of the URL, `h1:5432,h2:5433`. */
  hostPort: string;
  hosts: ReadonlyArray<{ host: string; port: number }>;
} {
  const p = dbUrlParts(url);
  const user = p.username || 'postgres';
  return {
    user,
    db: p.database || user,
    hostPort: p.hosts.map(hostPort).join(','),
    hosts: p.hosts,
  };
}

/** host:port, an IPv6 address in brackets. */
export const hostPort = (h: { host: string; port: number }): string =>
  `${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port}`;

export const since = (t0: number): number => Math.round((performance.now() - t0) * 10) / 10;
