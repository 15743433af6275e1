/**
 * Every database client diagnose opens goes through one registry, so Ctrl-C (or the end of the
 * run) closes all of them. Also: what a failed connect means, in words a user can act on.
 */
import postgres from 'postgres';
import type { DbConfig } from '../../config/config';

export type Sql = postgres.Sql;
export type ClientOptions = postgres.Options<Record<string, never>>;

export const APPLICATION_NAME = 'keel-diagnose';

export interface Clients {
  /** A client the registry will close; options override the diagnose defaults. */
  open(url: string, options?: ClientOptions): Sql;
  /** Closes every client opened so far (and any opened later, at once). */
  closeAll(): Promise<void>;
  readonly opened: number;
}

export function createClients(db: Pick<DbConfig, 'ssl' | 'connectTimeoutS'>): Clients {
  const live = new Set<Sql>();
  let closed = false;
  let opened = 0;
  const end = (sql: Sql) => sql.end({ timeout: 1 }).catch(() => undefined);
  return {
    open(url, options = {}) {
      const sql = postgres(url, {
        max: 1,
        ssl: db.ssl,
        connect_timeout: db.connectTimeoutS,
        // Diagnose holds its connections on purpose: no idle or lifetime timer may close them.
        idle_timeout: 0,
        max_lifetime: 0,
        fetch_types: false,
        onnotice: () => undefined,
        ...options,
        connection: { application_name: APPLICATION_NAME, ...options.connection },
      } as ClientOptions);
      opened += 1;
      live.add(sql);
      if (closed) void end(sql);
      return sql;
    },
    async closeAll() {
      closed = true;
      await Promise.all([...live].map(end));
      live.clear();
    },
    get opened() {
      return opened;
    },
  };
}

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

/** user, database and host:port of a URL, for messages. */
export function describeUrl(url: string): {
  user: string;
  db: string;
  hostPort: string;
  host: string;
  port: number;
} {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || 5432);
  return {
    user: decodeURIComponent(u.username) || 'postgres',
    db: decodeURIComponent(u.pathname.slice(1)) || decodeURIComponent(u.username) || 'postgres',
    hostPort: `${u.hostname}:${port}`,
    host,
    port,
  };
}

export const since = (t0: number): number => Math.round((performance.now() - t0) * 10) / 10;
