/** The deployment's worst-case connection count against what the server or PgBouncer allows. */
import {
  budgetInput,
  checkBudget,
  checkPooledBudget,
  computeBudget,
  type Budget,
} from '../../config/budget';
import type { Config } from '../../config/config';
import type { PoolerFacts } from './pooler';
import { check, type Check } from './report';
import type { ServerFacts } from './server';

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
  return check(
    'budget.connections',
    verdict.status,
    budget.peak,
    'connections',
    verdict.line,
    verdict.fix,
    { ...budget, allowed: verdict.allowed },
  );
}

/** Behind PgBouncer the limit that counts is its max_client_conn; migrations go direct. */
function pooledBudget(config: Config, full: Budget, maxClient: number): Check {
  const direct = config.db.migrationUrl !== config.db.url;
  const verdict = checkPooledBudget(full, maxClient, direct);
  const peak = verdict.budget.peak;
  if (Number.isNaN(maxClient))
    return check(
      'budget.connections',
      'ok',
      peak,
      'connections',
      `${peak} client connections to PgBouncer at peak; the server sees only PgBouncer's pools`,
      'set DB_POOLER_ADMIN_URL to check this against max_client_conn',
      { ...verdict.budget },
    );
  return check(
    'budget.connections',
    verdict.status,
    peak,
    'connections',
    verdict.line,
    verdict.fix,
    { ...verdict.budget, maxClientConn: maxClient },
  );
}
