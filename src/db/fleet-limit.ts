/**
 * What a deployment may hold: the server's slots (max_connections, the reserved ones, the
 * connections others hold now) or, behind PgBouncer, its max_client_conn. A booting worker's
 * budget check (src/lifecycle/budget-guard.ts) and `keel diagnose` read them with these queries.
 */
import type { Config } from '../config/config';
import type { ServerLimit } from '../config/budget';
import type { FleetLimit } from '../lifecycle/budget-guard';
import { createClients, PROBE_APPLICATION_NAME, type Clients, type Sql } from './probe-clients';

/**
 * What the server allows a deployment: max_connections, the reserved slots, whether this role
 * may use them, and the client connections held now by anything that is not Keel (its workers
 * are keel:<instance>:<pid>[:...], the probe clients keel-diagnose).
 */
export async function readServerLimit(sql: Sql): Promise<ServerLimit> {
  const [row] = await sql<{ max: number; reserved: number; superuser: boolean; others: number }[]>`
    select current_setting('max_connections')::int as max,
      current_setting('superuser_reserved_connections')::int
        + coalesce(current_setting('reserved_connections', true)::int, 0) as reserved,
      (select rolsuper from pg_roles where rolname = current_user) as superuser,
      (select count(*)::int from pg_stat_activity where backend_type = 'client backend'
        and not (application_name like 'keel:%' or application_name = ${PROBE_APPLICATION_NAME})) as others`;
  return {
    maxConnections: row?.max ?? 0,
    reserved: row?.reserved ?? 0,
    superuser: row?.superuser === true,
    others: row?.others ?? 0,
  };
}

const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** PgBouncer refuses statement_timeout as a startup parameter; PostgreSQL accepts it. */
export async function refusesStartupTimeout(url: string, clients: Clients): Promise<boolean> {
  const sql = clients.open(url, { connection: { statement_timeout: 1000 } });
  try {
    await sql`select 1`;
    return false;
  } catch (err) {
    if (/unsupported startup parameter/i.test(errText(err))) return true;
    throw err;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** SHOW POOLS / SHOW CONFIG on PgBouncer's admin console (simple protocol only). */
export async function pgbouncerShow(
  sql: Sql,
  what: 'POOLS' | 'CONFIG',
): Promise<Record<string, unknown>[]> {
  return (await sql.unsafe(`SHOW ${what}`).simple()) as unknown as Record<string, unknown>[];
}

export async function showConfig(sql: Sql): Promise<Record<string, string>> {
  const rows = await pgbouncerShow(sql, 'CONFIG');
  return Object.fromEntries(rows.map((r) => [String(r.key), String(r.value)]));
}

/**
 * The limits a booting worker's budget check needs: PgBouncer or not (only asked when a
 * separate direct URL is set), then the server's slots through the direct URL, or PgBouncer's
 * max_client_conn through its admin console (DB_POOLER_ADMIN_URL).
 */
export async function readFleetLimit(config: Config): Promise<FleetLimit> {
  const clients = createClients(config.db);
  try {
    const direct = config.db.migrationUrl !== config.db.url;
    if (direct && (await refusesStartupTimeout(config.db.url, clients))) {
      const admin = config.db.poolerAdminUrl;
      const max = admin
        ? Number((await showConfig(clients.open(admin, { prepare: false }))).max_client_conn)
        : NaN;
      return {
        kind: 'pgbouncer',
        maxClientConn: Number.isFinite(max) ? max : null,
        migrationsDirect: true,
      };
    }
    return { kind: 'server', limit: await readServerLimit(clients.open(config.db.migrationUrl)) };
  } finally {
    await clients.closeAll();
  }
}
