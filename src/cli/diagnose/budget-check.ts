/** The deployment's worst-case connection count against what the server or PgBouncer allows. */
import { checkBudget, computeBudget, type Budget, type BudgetInput } from '../../config/budget';
import type { Config } from '../../config/config';
import type { PoolerFacts } from './pooler';
import { check, type Check } from './report';
import type { ServerFacts } from './server';

/** The budget inputs of this deployment, from the same configuration the workers read. */
function budgetInput(config: Config): BudgetInput {
  const p = config.platform;
  return {
    replicas: p.replicas,
    instances: config.instances,
    poolMax: config.db.poolMax,
    // On Railway old and new deployments run together during the overlap and the draining.
    deployOverlap: p.railway && ((p.drainingS ?? 0) > 0 || (p.overlapS ?? 0) > 0),
  };
}

export function checkConnectionBudget(
  config: Config,
  server: ServerFacts,
  pooler: PoolerFacts | null,
): Check {
  const budget = computeBudget(budgetInput(config));
  if (pooler?.pgbouncer) {
    return pooledBudget(config, budget, Number(pooler.config?.max_client_conn ?? NaN));
  }
  const verdict = checkBudget(budget, {
    maxConnections: server.maxConnections,
    reserved: server.reserved,
    superuser: server.superuser,
    others: server.others,
  });
  const fix =
    verdict.status === 'ok'
      ? null
      : `lower DB_POOL_MAX (or set DB_MAX_CONNECTIONS), WEB_CONCURRENCY or KEEL_REPLICAS, raise max_connections, or put PgBouncer in front`;
  return check(
    'budget.connections',
    verdict.status,
    budget.peak,
    'connections',
    verdict.line,
    fix,
    { ...budget, allowed: verdict.allowed },
  );
}

/** Behind PgBouncer the limit that counts is its max_client_conn; migrations go direct. */
function pooledBudget(config: Config, full: Budget, maxClient: number): Check {
  const direct = config.db.migrationUrl !== config.db.url;
  const migrations = full.parts.find((p) => p.name === 'migrations')?.count ?? 0;
  const budget = { ...full, peak: full.peak - (direct ? migrations : 0) };
  if (Number.isNaN(maxClient))
    return check(
      'budget.connections',
      'ok',
      budget.peak,
      'connections',
      `${budget.peak} client connections to PgBouncer at peak; the server sees only PgBouncer's pools`,
      'set DB_POOLER_ADMIN_URL to check this against max_client_conn',
      { ...budget },
    );
  const status = budget.peak > maxClient ? 'fail' : 'ok';
  return check(
    'budget.connections',
    status,
    budget.peak,
    'connections',
    `${budget.peak} client connections at peak ${status === 'fail' ? '>' : '<='} PgBouncer max_client_conn ${maxClient}`,
    status === 'fail'
      ? 'raise max_client_conn or lower DB_POOL_MAX / WEB_CONCURRENCY / KEEL_REPLICAS'
      : null,
    { ...budget, maxClientConn: maxClient },
  );
}
