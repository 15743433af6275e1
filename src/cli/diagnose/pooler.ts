/**
 * Is there a PgBouncer between Keel and the server, does it keep prepared statements (so
 * DB_PREPARE is right), and with admin credentials what SHOW POOLS / SHOW CONFIG say.
 */
import type { Config } from '../../config/config';
import { pgbouncerShow, refusesStartupTimeout, showConfig } from '../../db/fleet-limit';
import type { Clients } from '../../db/probe-clients';
import { describeUrl } from './connections';
import { check, type Check } from './report';

export interface PoolerFacts {
  pgbouncer: boolean;
  /** PgBouncer's SHOW CONFIG, when the admin console answered. */
  config: Record<string, string> | null;
}

/**
 * A prepared statement made on one server connection, then used while that connection is held
 * by another client's transaction: a pooler that does not keep statements answers 26000, which
 * the driver hides by preparing again (one extra send, counted through its debug hook).
 */
async function losesPreparedStatements(url: string, clients: Clients): Promise<boolean> {
  let sends = 0;
  const b = clients.open(url, { prepare: true, debug: () => (sends += 1) } as never);
  const a = clients.open(url, { prepare: false });
  let queries = 0;
  try {
    for (let i = 1; i <= 2; i++) {
      await b`select ${i}::int as n`;
      queries += 1;
      // PgBouncer hands out the server connection released last: `a` now holds b's.
      await a.begin(async (tx) => {
        await tx`select 1`;
        await b`select ${i}::int as n`;
        queries += 1;
      });
    }
  } finally {
    await Promise.all([a.end({ timeout: 1 }), b.end({ timeout: 1 })]);
  }
  return sends > queries;
}

async function checkAdmin(
  config: Config,
  clients: Clients,
): Promise<{ checks: Check[]; cfg: Record<string, string> | null }> {
  const url = config.db.poolerAdminUrl;
  if (!url) return { checks: [], cfg: null };
  const sql = clients.open(url, { prepare: false });
  try {
    const pools = await pgbouncerShow(sql, 'POOLS');
    const cfg = await showConfig(sql);
    const db = describeUrl(config.db.url).db;
    const mine = pools.filter((p) => p.database === db);
    const n = (k: string) => mine.reduce((s, p) => s + Number(p[k] ?? 0), 0);
    const waiting = n('cl_waiting');
    const keys = [
      'pool_mode',
      'default_pool_size',
      'max_client_conn',
      'max_db_connections',
      'max_prepared_statements',
      'server_idle_timeout',
      'server_lifetime',
    ];
    return {
      cfg,
      checks: [
        check(
          'pooler.pools',
          waiting > 0 ? 'warn' : 'ok',
          n('sv_active') + n('sv_idle') + n('sv_used'),
          'connections',
          `database "${db}": clients ${n('cl_active')} active / ${waiting} waiting; server connections ${n('sv_active')} active, ${n('sv_idle')} idle, ${n('sv_used')} used; longest wait ${n('maxwait')} s`,
          waiting > 0
            ? 'clients wait for a server connection: raise default_pool_size or lower DB_POOL_MAX'
            : null,
          { pools: mine },
        ),
        check(
          'pooler.config',
          'ok',
          cfg.pool_mode ?? null,
          null,
          keys
            .filter((k) => k in cfg)
            .map((k) => `${k}=${cfg[k]}`)
            .join(', '),
          null,
          Object.fromEntries(keys.filter((k) => k in cfg).map((k) => [k, cfg[k]])),
        ),
      ],
    };
  } catch (err) {
    return {
      cfg: null,
      checks: [
        check(
          'pooler.admin',
          'warn',
          null,
          null,
          `the PgBouncer admin console did not answer: ${(err instanceof Error ? err.message : String(err)).slice(0, 160)}`,
          'check DB_POOLER_ADMIN_URL (database "pgbouncer", a user listed in admin_users or stats_users)',
        ),
      ],
    };
  } finally {
    await sql.end({ timeout: 1 });
  }
}

export async function checkPooler(
  config: Config,
  clients: Clients,
): Promise<{ checks: Check[]; facts: PoolerFacts }> {
  const pgbouncer = await refusesStartupTimeout(config.db.url, clients);
  if (!pgbouncer) {
    const checks = [
      check(
        'pooler.detected',
        'ok',
        'none',
        null,
        'no PgBouncer: the server accepts statement_timeout at startup',
      ),
    ];
    return { checks, facts: { pgbouncer, config: null } };
  }
  const checks: Check[] = [];
  const direct = config.db.migrationUrl !== config.db.url;
  checks.push(
    check(
      'pooler.detected',
      direct ? 'ok' : 'warn',
      'pgbouncer',
      null,
      'PgBouncer in front of the server (it refuses statement_timeout as a startup parameter)',
      direct
        ? null
        : 'set DATABASE_MIGRATION_URL to a direct URL: migrations hold an advisory lock across transactions',
      { migrationUrlDirect: direct },
    ),
  );
  const admin = await checkAdmin(config, clients);
  const maxPrepared = admin.cfg ? Number(admin.cfg.max_prepared_statements ?? 0) : null;
  const loses =
    maxPrepared !== null
      ? maxPrepared === 0
      : await losesPreparedStatements(config.db.url, clients);
  const how = maxPrepared !== null ? `max_prepared_statements=${maxPrepared}` : 'measured';
  const data = {
    keepsPrepared: !loses,
    source: maxPrepared !== null ? 'show config' : 'measured',
    prepare: config.db.prepare,
  };
  const startupTimeout = config.db.statementTimeoutMs > 0;
  if (config.db.prepare && (loses || startupTimeout)) {
    const why = [
      startupTimeout ? 'Keel then sends statement_timeout at startup, which PgBouncer refuses' : '',
      loses ? 'PgBouncer loses prepared statements between transactions' : '',
    ]
      .filter(Boolean)
      .join('; ');
    checks.push(
      check(
        'pooler.prepared',
        'fail',
        loses ? 'lost' : 'kept',
        null,
        `DB_PREPARE=true behind PgBouncer: ${why} (${how})`,
        'set DB_PREPARE=false',
        data,
      ),
    );
  } else {
    checks.push(
      check(
        'pooler.prepared',
        'ok',
        loses ? 'lost' : 'kept',
        null,
        `PgBouncer ${loses ? 'does not keep' : 'keeps'} prepared statements (${how}); DB_PREPARE=false is right`,
        null,
        data,
      ),
    );
  }
  checks.push(...admin.checks);
  return { checks, facts: { pgbouncer, config: admin.cfg } };
}
