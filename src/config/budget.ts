/**
 * The connection budget of a deployment: the most server connections it can hold at once
 * (replicas x workers x pool, plus a reload's or a deploy's overlap and the migration
 * connections of booting workers) against what the server allows. Pure arithmetic, so
 * `keel diagnose` and a booting worker reach the same verdict with the same line.
 */
import type { Config } from './config';

export interface BudgetInput {
  replicas: number;
  /** PM2 workers per replica (WEB_CONCURRENCY). */
  instances: number;
  /** Connections per worker (DB_POOL_MAX, or DB_MAX_CONNECTIONS / instances). */
  poolMax: number;
  /** A deploy runs the old and the new replicas side by side (Railway overlap or draining). */
  deployOverlap: boolean;
}

export interface BudgetPart {
  name: 'pools' | 'reload' | 'deploy' | 'migrations' | 'probes';
  count: number;
  why: string;
}

export interface Budget {
  /** Connections every worker's full pool holds together. */
  steady: number;
  /** The worst moment: steady + the larger overlap + migrations + probes. */
  peak: number;
  parts: BudgetPart[];
}

export interface ServerLimit {
  maxConnections: number;
  /** superuser_reserved_connections (+ reserved_connections on PostgreSQL 16+). */
  reserved: number;
  /** A superuser may use the reserved slots. */
  superuser: boolean;
  /** Connections held now by anything that is not this deployment. */
  others: number;
}

export interface BudgetVerdict {
  status: 'ok' | 'warn' | 'fail';
  allowed: number;
  budget: Budget;
  /** The whole arithmetic in one line. */
  line: string;
  /** What to change when it does not fit (null when it does): diagnose and the boot check say the same. */
  fix: string | null;
}

// PM2 reload replaces one worker at a time, two at a time above two instances.
const reloadBatch = (instances: number): number => (instances > 2 ? 2 : 1);
// Above this share of the allowed slots a spike from elsewhere (psql, a cron job) can tip it over.
const WARN_SHARE = 0.9;

/** The budget inputs of a deployment, from the same configuration every worker reads. */
export function budgetInput(config: Config): BudgetInput {
  const p = config.platform;
  return {
    replicas: p.replicas,
    instances: config.instances,
    poolMax: config.db.poolMax,
    // On Railway old and new deployments run together during the overlap and the draining.
    deployOverlap: p.railway && ((p.drainingS ?? 0) > 0 || (p.overlapS ?? 0) > 0),
  };
}

export function computeBudget(input: BudgetInput): Budget {
  const { replicas, instances, poolMax } = input;
  const steady = replicas * instances * poolMax;
  const reload = replicas * Math.min(instances, reloadBatch(instances)) * poolMax;
  const deploy = input.deployOverlap ? steady : 0;
  // Every booting worker migrates on one direct connection while the old pools are still full.
  const migrations = replicas * instances;
  // Each worker's connect gate allows one socket beyond its pool: the path probe or a cancel.
  const probes = replicas * instances;
  const parts: BudgetPart[] = [
    {
      name: 'pools',
      count: steady,
      why: `${replicas} replicas x ${instances} workers x ${poolMax}`,
    },
    { name: 'reload', count: reload, why: 'new workers started before the old ones end' },
    { name: 'deploy', count: deploy, why: 'old and new replicas side by side' },
    { name: 'migrations', count: migrations, why: 'one direct connection per booting worker' },
    { name: 'probes', count: probes, why: 'one path probe or cancel per worker' },
  ];
  // A reload and a deploy do not happen at the same moment: only the larger overlap counts.
  return { steady, peak: steady + Math.max(reload, deploy) + migrations + probes, parts };
}

export function allowedConnections(limit: ServerLimit): number {
  return limit.maxConnections - (limit.superuser ? 0 : limit.reserved) - limit.others;
}

export function checkBudget(budget: Budget, limit: ServerLimit): BudgetVerdict {
  const allowed = allowedConnections(limit);
  const [pools, reload, deploy, migrations, probes] = budget.parts;
  const overlap = (deploy?.count ?? 0) > (reload?.count ?? 0) ? deploy : reload;
  const status =
    budget.peak > allowed ? 'fail' : budget.peak > allowed * WARN_SHARE ? 'warn' : 'ok';
  const reserved = limit.superuser ? '' : ` - ${limit.reserved} reserved`;
  const line =
    `${pools?.why} = ${budget.steady}, + ${overlap?.count} ${overlap?.name} overlap` +
    ` + ${migrations?.count} migrations + ${probes?.count ?? 0} probes = ${budget.peak} at peak` +
    ` ${status === 'fail' ? '>' : '<='} ${allowed} allowed` +
    ` (max_connections ${limit.maxConnections}${reserved} - ${limit.others} held by others)`;
  const fix =
    status === 'ok'
      ? null
      : 'lower DB_POOL_MAX (or set DB_MAX_CONNECTIONS), WEB_CONCURRENCY or KEEL_REPLICAS, raise max_connections, or put PgBouncer in front';
  return { status, allowed, budget, line, fix };
}

/**
 * Behind PgBouncer the limit a client meets is its max_client_conn; the migrations do not count
 * when they go to the server directly (DATABASE_MIGRATION_URL / DATABASE_UNPOOLED_URL).
 */
export function checkPooledBudget(
  full: Budget,
  maxClientConn: number,
  migrationsDirect: boolean,
): BudgetVerdict {
  const migrations = full.parts.find((p) => p.name === 'migrations')?.count ?? 0;
  const budget = { ...full, peak: full.peak - (migrationsDirect ? migrations : 0) };
  const status = budget.peak > maxClientConn ? 'fail' : 'ok';
  const line = `${budget.peak} client connections at peak ${status === 'fail' ? '>' : '<='} PgBouncer max_client_conn ${maxClientConn}`;
  const fix =
    status === 'ok'
      ? null
      : 'raise max_client_conn or lower DB_POOL_MAX / WEB_CONCURRENCY / KEEL_REPLICAS';
  return { status, allowed: maxClientConn, budget, line, fix };
}
