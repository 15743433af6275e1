import Router from '@koa/router';
import type { Accounts } from '../../ledger/accounts';
import { newAccount, page, pathId } from '../../ledger/money';
import type { Transfers } from '../../ledger/transfers';
import { readJson } from '../body';
import type { KeelState } from '../context';
import { validate } from '../validate';

export interface AccountRoutesDeps {
  accounts: Accounts;
  transfers: Transfers;
  bodyLimitBytes: number;
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
    const id = validate(pathId, ctx.params.id, 'id');
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
