import Router from '@koa/router';
import { refusalError, ValidationError } from '../../errors';
import { idempotencyKey } from '../../ledger/idempotency-key';
import { newTransfer, pathId } from '../../ledger/money';
import type { Transfers } from '../../ledger/transfers';
import { readJson } from '../body';
import type { KeelState } from '../context';
import { validate } from '../validate';

// 1..200 printable ASCII characters, as the contract allows.
const KEY = /^[\x20-\x7e]{1,200}$/;

export function transferRoutes(
  router: Router<KeelState>,
  deps: { transfers: Transfers; bodyLimitBytes: number },
): void {
  const { transfers } = deps;

  router.post('/api/transfers', async (ctx) => {
    // Node joins a repeated unknown header with ", " in `headers`; `headersDistinct` keeps
    // each occurrence, so a key sent twice is refused instead of becoming a third key.
    const sent = ctx.req.headersDistinct['idempotency-key'] ?? [];
    // Every answer names a key, a refused one's too: one the server made, since the client's is
    // unusable (nothing was applied under it).
    if (sent.length > 1 || (sent[0] !== undefined && !KEY.test(sent[0]))) {
      ctx.set('Idempotency-Key', idempotencyKey(undefined).header);
    }
    if (sent.length > 1) {
      throw new ValidationError('Idempotency-Key must be sent once', [
        { path: 'Idempotency-Key', message: `was sent ${sent.length} times` },
      ]);
    }
    const rawKey = sent[0];
    if (rawKey !== undefined && !KEY.test(rawKey)) {
      throw new ValidationError('Idempotency-Key must be 1 to 200 printable characters', [
        { path: 'Idempotency-Key', message: 'must be 1 to 200 printable characters' },
      ]);
    }
    // Every answer carries the effective key: a client that got a 503 or lost the connection
    // retries with it and is applied exactly once.
    const key = idempotencyKey(rawKey);
    ctx.set('Idempotency-Key', key.header);
    const input = validate(newTransfer, await readJson(ctx, deps.bodyLimitBytes), 'body');
    const result = await transfers.create(input, key, ctx.state.work);
    // Answered like every error (the same bytes keel_transfer_v2 stored for a replay).
    if (result.refused) throw refusalError(result.refused);
    ctx.status = result.status;
    if (result.replayed) ctx.set('Idempotent-Replayed', 'true');
    if (result.status === 201) {
      ctx.set('Location', `/api/transfers/${(result.body as { id: number }).id}`);
    }
    ctx.body = result.body;
  });

  router.get('/api/transfers/:id', async (ctx) => {
    const id = validate(pathId, ctx.params.id, 'id');
    ctx.body = await transfers.get(id, ctx.state.work);
  });
}
