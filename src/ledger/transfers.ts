/**
 * Transfers: one transaction whose one statement (keel_transfer, migrations/0003) records the
 * idempotency key, locks both accounts in id order (no deadlock between opposite transfers),
 * checks the balance and moves the money. Business refusals (404, 409) are stored under the
 * key too, so a replay answers the same.
 */
import { createHash, randomUUID } from 'node:crypto';
import { ConflictError, NotFoundError } from '../errors';
import type { Db, Tx, WorkContext } from '../db/runner';
import type { IdempotencyKey } from './idempotency-key';
import { MAX_MONEY, type NewTransfer, type Page } from './money';

export interface Transfer {
  id: number;
  from: number;
  to: number;
  amount: number;
  created_at: string;
}

interface TransferRow {
  id: string;
  from_id: string;
  to_id: string;
  amount: string;
  created_at: Date;
}

export interface StoredResponse {
  status: number;
  body: unknown;
  replayed: boolean;
}

export interface Transfers {
  /** `key`: the client's Idempotency-Key, or one generated for this request (./idempotency-key). */
  create(input: NewTransfer, key: IdempotencyKey, ctx: WorkContext): Promise<StoredResponse>;
  get(id: number, ctx: WorkContext): Promise<Transfer>;
  listForAccount(
    accountId: number,
    page: Page,
    ctx: WorkContext,
  ): Promise<{ items: Transfer[]; next: number | null }>;
}

export function toTransfer(r: TransferRow): Transfer {
  return {
    id: Number(r.id),
    from: Number(r.from_id),
    to: Number(r.to_id),
    amount: Number(r.amount),
    created_at: r.created_at.toISOString(),
  };
}

function requestHash(input: NewTransfer): string {
  return createHash('sha256')
    .update(JSON.stringify([input.from, input.to, input.amount]))
    .digest('hex');
}

export function createTransfers({ db }: { db: Db }): Transfers {
  /** The transfer's one statement (migrations/0003_transfer_function.sql): claim, lock, move, answer. */
  async function apply(
    tx: Tx,
    input: NewTransfer,
    key: string,
    hash: string,
    owner: string,
  ): Promise<StoredResponse> {
    const [row] = await tx<
      { fresh: boolean; status: number; body: string; owner: string; request_hash: string }[]
    >`
      select fresh, status, body, owner, request_hash from keel_transfer(
        ${key}, ${hash}, ${owner}, ${input.from}, ${input.to}, ${input.amount}, ${MAX_MONEY})`;
    if (!row) throw new Error('keel_transfer returned nothing');
    if (!row.fresh && row.request_hash !== hash) {
      throw new ConflictError(
        422,
        'idempotency_key_reused',
        'this Idempotency-Key was used with a different request body',
      );
    }
    // Answered before by this request's own earlier attempt (not a replay), or by another.
    return {
      status: row.status,
      body: JSON.parse(row.body) as unknown,
      replayed: !row.fresh && row.owner !== owner,
    };
  }

  return {
    create(input, key, ctx) {
      // `owner` tells this request's own earlier attempt (not a replay) from another request.
      const owner = randomUUID();
      const hash = requestHash(input);
      return db.transaction((tx) => apply(tx, input, key.stored, hash, owner), ctx);
    },
    async get(id, ctx) {
      const rows = await db.read(
        (sql) =>
          sql<
            TransferRow[]
          >`select id, from_id, to_id, amount, created_at from transfers where id = ${id}`,
        ctx,
      );
      if (!rows[0]) throw new NotFoundError(`transfer ${id} not found`);
      return toTransfer(rows[0]);
    },
    async listForAccount(accountId, { limit, after }, ctx) {
      const rows = await db.read(async (sql) => {
        const acct = await sql`select 1 from accounts where id = ${accountId}`;
        if (acct.length === 0) return null;
        return sql<TransferRow[]>`
          select id, from_id, to_id, amount, created_at from transfers
          where id > ${after} and (from_id = ${accountId} or to_id = ${accountId})
          order by id limit ${limit + 1}`;
      }, ctx);
      if (rows === null) throw new NotFoundError(`account ${accountId} not found`);
      const items = rows.slice(0, limit).map(toTransfer);
      const next = rows.length > limit ? (items[items.length - 1]?.id ?? null) : null;
      return { items, next };
    },
  };
}
