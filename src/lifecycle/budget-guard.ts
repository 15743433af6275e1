/**
 * The connection budget, checked by a booting worker once the database answers: the fleet's
 * worst case (src/config/budget.ts) against what the server, or PgBouncer, allows.
 *
 * `refuse` (the default) stops the worker with exit 78 only when the configuration alone can
 * never fit: the peak is over max_connections minus the reserved slots even with nobody else
 * connected. When it is over only because of connections held by others now (a psql session,
 * a cron job), the worker warns and serves: a running fleet must not die, one restart at a
 * time, because someone opened psql. `warn` never stops; `off` does not look.
 */
import {
  checkBudget,
  checkPooledBudget,
  computeBudget,
  type BudgetInput,
  type BudgetVerdict,
  type ServerLimit,
} from '../config/budget';
import type { Logger } from '../logger';

export type FleetLimit =
  | { kind: 'server'; limit: ServerLimit }
  /** maxClientConn is null when PgBouncer's admin console was not asked (no DB_POOLER_ADMIN_URL). */
  | { kind: 'pgbouncer'; maxClientConn: number | null; migrationsDirect: boolean };

export interface BudgetGuardDeps {
  mode: 'refuse' | 'warn' | 'off';
  input: BudgetInput;
  readLimit: () => Promise<FleetLimit>;
  log: Logger;
}

/** Thrown to stop the boot; its message is the whole arithmetic in one line. */
export class BudgetRefusal extends Error {
  readonly exitCode = 78; // EX_CONFIG, as for any configuration that cannot work: PM2 does not restart it.
  constructor(readonly line: string) {
    super(`connection budget exceeded: ${line}`);
    this.name = 'BudgetRefusal';
  }
}

export async function guardBudget(deps: BudgetGuardDeps): Promise<BudgetVerdict | null> {
  if (deps.mode === 'off') return null;
  let limit: FleetLimit;
  try {
    limit = await deps.readLimit();
  } catch (err) {
    deps.log.warn('connection budget not checked: the limits could not be read', {
      error: err instanceof Error ? err.message : String(err),
    });
    return null;
  }
  const budget = computeBudget(deps.input);
  let verdict: BudgetVerdict;
  let alone: BudgetVerdict;
  if (limit.kind === 'pgbouncer') {
    if (limit.maxClientConn === null) {
      deps.log.info(
        'connection budget not checked: behind PgBouncer; set DB_POOLER_ADMIN_URL to check it against max_client_conn',
        { peak: budget.peak },
      );
      return null;
    }
    verdict = alone = checkPooledBudget(budget, limit.maxClientConn, limit.migrationsDirect);
  } else {
    verdict = checkBudget(budget, limit.limit);
    alone = checkBudget(budget, { ...limit.limit, others: 0 });
  }
  const meta = { status: verdict.status, peak: verdict.budget.peak, allowed: verdict.allowed };
  if (verdict.status === 'ok') {
    deps.log.info(`connection budget: ${verdict.line}`, meta);
    return verdict;
  }
  if (deps.mode === 'refuse' && alone.status === 'fail') {
    const refusal = new BudgetRefusal(verdict.line);
    deps.log.error(
      `${refusal.message} -> ${verdict.fix ?? alone.fix} (KEEL_BUDGET_CHECK=warn boots anyway)`,
      meta,
    );
    throw refusal;
  }
  const why =
    verdict.status === 'fail' ? 'over the limit only with the connections others hold now' : '';
  deps.log.warn(`connection budget: ${verdict.line}${why ? ` (${why})` : ''}`, meta);
  return verdict;
}
