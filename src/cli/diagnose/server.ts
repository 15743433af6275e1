/** What the server itself says: version, connection limits, who holds connections, timeouts. */
import fs from 'node:fs/promises';
import type { Config } from '../../config/config';
import { MIGRATIONS_DIR } from '../../db/migrate';
import { readServerLimit } from '../../db/fleet-limit';
import type { Sql } from '../../db/probe-clients';
import { check, type Check } from './report';

export interface ServerFacts {
  version: string;
  maxConnections: number;
  reserved: number;
  superuser: boolean;
  /** Client backends now, and those not held by Keel or by diagnose. */
  connections: number;
  others: number;
  idleSessionTimeoutMs: number;
}

const SETTINGS = [
  'server_version',
  'idle_session_timeout',
  'idle_in_transaction_session_timeout',
  'statement_timeout',
  'tcp_keepalives_idle',
  'tcp_keepalives_interval',
  'tcp_keepalives_count',
] as const;

async function settings(sql: Sql): Promise<Record<string, string>> {
  const rows = await sql<{ name: string; setting: string }[]>`
    select name, setting from pg_settings where name = any(string_to_array(${SETTINGS.join(',')}, ','))`;
  return Object.fromEntries(rows.map((r) => [r.name, r.setting]));
}

/** keel:<instance>:<pid> collapses to keel:* so a fleet reads as one line. */
const appGroup = (name: string): string =>
  /^keel:\d+:\d+$/.test(name) ? 'keel:*' : name || '(none)';

export async function checkServer(
  sql: Sql,
  config: Config,
): Promise<{ checks: Check[]; facts: ServerFacts }> {
  const s = await settings(sql);
  const num = (k: string) => Number(s[k] ?? 0);
  const limit = await readServerLimit(sql);
  const activity = await sql<{ app: string; state: string | null; n: number }[]>`
    select application_name as app, state, count(*)::int as n from pg_stat_activity
    where backend_type = 'client backend' group by 1, 2 order by 3 desc`;
  const groups = new Map<string, Record<string, number>>();
  for (const a of activity) {
    const g = groups.get(appGroup(a.app)) ?? {};
    g[a.state ?? 'unknown'] = (g[a.state ?? 'unknown'] ?? 0) + a.n;
    groups.set(appGroup(a.app), g);
  }
  const total = activity.reduce((n, a) => n + a.n, 0);
  const reserved = limit.reserved;
  const facts: ServerFacts = {
    version: s.server_version ?? 'unknown',
    ...limit,
    connections: total,
    idleSessionTimeoutMs: num('idle_session_timeout'),
  };
  const held = [...groups].map(
    ([app, g]) =>
      `${app} ${Object.entries(g)
        .map(([st, n]) => `${n} ${st}`)
        .join('/')}`,
  );
  const checks = [
    check('server.version', 'ok', facts.version, null, `PostgreSQL ${facts.version}`),
    check(
      'server.max_connections',
      'ok',
      facts.maxConnections,
      'connections',
      `max_connections ${facts.maxConnections}, ${reserved} reserved for superusers${facts.superuser ? ' (this role is one)' : ''}`,
      null,
      { maxConnections: facts.maxConnections, reserved, superuser: facts.superuser },
    ),
    check(
      'server.activity',
      'ok',
      total,
      'connections',
      `held now: ${held.join(', ') || 'none'}`,
      null,
      { byApplication: Object.fromEntries(groups) },
    ),
    idleSession(facts.idleSessionTimeoutMs, config),
    idleInTransaction(num('idle_in_transaction_session_timeout'), config),
    check(
      'server.statement_timeout',
      'ok',
      num('statement_timeout'),
      'ms',
      `server default statement_timeout ${num('statement_timeout')} ms; Keel sets its own (DB_STATEMENT_TIMEOUT_MS=${config.db.statementTimeoutMs})`,
    ),
    check(
      'server.tcp_keepalives',
      'ok',
      num('tcp_keepalives_idle'),
      's',
      `server-side keepalive idle ${num('tcp_keepalives_idle')} s, interval ${num('tcp_keepalives_interval')} s, count ${num('tcp_keepalives_count')} (0 = the OS default); Keel's own side sends keepalive every ${config.db.keepAliveS} s`,
      null,
      {
        idle: num('tcp_keepalives_idle'),
        interval: num('tcp_keepalives_interval'),
        count: num('tcp_keepalives_count'),
      },
    ),
    await migrations(sql),
  ];
  return { checks, facts };
}

function idleSession(ms: number, config: Config): Check {
  // The longest a Keel connection can sit idle: its idle timer, or its lifetime without one.
  const keelIdleS = config.db.idleTimeoutS?.[1] ?? config.db.maxLifetimeS[1];
  if (ms === 0)
    return check(
      'server.idle_session_timeout',
      'ok',
      0,
      'ms',
      'the server never closes idle sessions (idle_session_timeout 0)',
    );
  if (ms <= keelIdleS * 1000)
    return check(
      'server.idle_session_timeout',
      'fail',
      ms,
      'ms',
      `the server closes sessions idle for ${ms / 1000} s, before Keel's own idle timer (up to ${keelIdleS} s) does: clients see 57P05 errors`,
      `set DB_IDLE_CUTOFF_S=${Math.max(2, Math.floor(ms / 1000))} or ALTER ROLE ... SET idle_session_timeout = 0`,
    );
  return check(
    'server.idle_session_timeout',
    'ok',
    ms,
    'ms',
    `the server closes sessions idle for ${ms / 1000} s; Keel closes its own first (at most ${keelIdleS} s)`,
  );
}

function idleInTransaction(ms: number, config: Config): Check {
  if (ms > 0 && ms < config.db.statementTimeoutMs)
    return check(
      'server.idle_in_transaction',
      'warn',
      ms,
      'ms',
      `idle_in_transaction_session_timeout ${ms} ms is below DB_STATEMENT_TIMEOUT_MS=${config.db.statementTimeoutMs}`,
      'raise it above the statement timeout, or unset it',
    );
  return check(
    'server.idle_in_transaction',
    'ok',
    ms,
    'ms',
    `idle_in_transaction_session_timeout ${ms} ms${ms === 0 ? ' (off)' : ''}`,
  );
}

/** Whether this role can run Keel's migrations: create tables, and write the bookkeeping table. */
async function migrations(sql: Sql): Promise<Check> {
  const [p] = await sql<
    { schema: string; create: boolean; table: boolean; write: boolean | null }[]
  >`
    select current_schema() as schema,
      has_schema_privilege(current_schema(), 'CREATE') as create,
      to_regclass('keel_migrations') is not null as table,
      case when to_regclass('keel_migrations') is null then null
        else has_table_privilege('keel_migrations', 'INSERT') end as write`;
  const files = (await fs.readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.sql'));
  const applied = p?.table
    ? (await sql<{ name: string }[]>`select name from keel_migrations`).map((r) => r.name)
    : [];
  const pending = files.filter((f) => !applied.includes(f)).length;
  const data = { schema: p?.schema ?? null, canCreate: p?.create === true, pending };
  if (pending > 0 && !p?.create)
    return check(
      'server.migrations',
      'fail',
      pending,
      null,
      `${pending} migration(s) pending and this role cannot create tables in schema "${p?.schema}"`,
      'use a role that owns the schema in DATABASE_MIGRATION_URL (GRANT CREATE ON SCHEMA ...)',
      data,
    );
  if (p?.table && p.write === false)
    return check(
      'server.migrations',
      'fail',
      pending,
      null,
      'this role cannot write keel_migrations',
      'run migrations as the role that owns the tables',
      data,
    );
  return check(
    'server.migrations',
    'ok',
    pending,
    null,
    `${pending} of ${files.length} migrations pending; the role can ${p?.create ? 'create tables' : 'use the existing tables'}`,
    null,
    data,
  );
}
