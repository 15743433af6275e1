import Router from '@koa/router';
import type { Accounts } from '../../ledger/accounts';
import { newAccount, page, pathId } from '../../ledger/money';
import type { Transfers } from '../../ledger/transfers';
import { readJson } from '../body';
import { ValidationError } from '../../errors';
import type { KeelContext, KeelState } from '../context';
import { validate } from '../validate';

export interface AccountRoutesDeps {
  accounts: Accounts;
  transfers: Transfers;
  bodyLimitBytes: number;
  /** Benchmarks only (KEEL_BENCH_ABLATE=zod): false reads path ids without zod. */
  zod?: boolean;
}

/**
 * Benchmarks only (KEEL_BENCH_ABLATE=router, =zod): `GET /api/accounts/:id` answered before the
 * router (by one regular expression), and its id read without zod (a plain integer check).
 */
export function accountReadShortcut({ accounts, zod }: { accounts: Accounts; zod: boolean }) {
  const path = /^\/api\/accounts\/([^/]+)$/;
  return async function accountRead(ctx: KeelContext, next: () => Promise<unknown>) {
    const m = ctx.method === 'GET' ? path.exec(ctx.path) : null;
    if (!m) return next();
    (ctx as { _matchedRoute?: string })._matchedRoute = '/api/accounts/:id';
    ctx.body = await accounts.get(readId(m[1], zod), ctx.state.work);
  };
}

function readId(raw: string | undefined, zod: boolean): number {
  if (zod || raw === undefined) return validate(pathId, raw, 'id');
  const id = Number(raw);
  if (!/^[1-9]\d{0,15}$/.test(raw) || id > Number.MAX_SAFE_INTEGER) {
    throw new ValidationError('id must be a positive integer id', []);
  }
  return id;
}

export function accountRoutes(router: Router<KeelState>, deps: AccountRoutesDeps): void {
  const { accounts, transfers } = deps;

  router.post('/api/accounts', async (ctx) => {
    const input = validate(newAccount, await readJson(ctx, deps.bodyLimitBytes), 'body');
    const account = await accounts.create(input, ctx.state.work);
    ctx.status = 201;
    ctx.set('Location', `/api/accounts/${account.id}`);
    ctx.body = account;
  });

  router.get('/api/accounts', async (ctx) => {
    const q = validate(page, ctx.query, 'query');
    ctx.body = await accounts.list({ limit: q.limit ?? 20, after: q.after ?? 0 }, ctx.state.work);
  });

  router.get('/api/accounts/:id', async (ctx) => {
    const id = readId(ctx.params.id, deps.zod !== false);
    ctx.body = await accounts.get(id, ctx.state.work);
  });

  router.get('/api/accounts/:id/transfers', async (ctx) => {
    const id = validate(pathId, ctx.params.id, 'id');
    const q = validate(page, ctx.query, 'query');
    ctx.body = await transfers.listForAccount(
      id,
      { limit: q.limit ?? 20, after: q.after ?? 0 },
      ctx.state.work,
    );
  });
}
