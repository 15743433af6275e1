/**
 * Transfers: one transaction that records the idempotency key, locks both accounts in id
 * order (no deadlock between opposite transfers), checks the balance and moves the money.
 * Business refusals (404, 409) are stored under the key too, so a replay answers the same.
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

function errorBody(code: string, message: string) {
  return { error: { code, message } };
}

export function createTransfers({ db }: { db: Db }): Transfers {
  async function apply(
    tx: Tx,
    input: NewTransfer,
    key: string,
    hash: string,
    owner: string,
  ): Promise<StoredResponse> {
    // One statement claims the key or returns the row already there, locked: a row swept (past
    // its retention) between a conflict and a later select can no longer turn into a 500.
    const [row] = await tx<{ request_hash: string; status: number; body: string; owner: string }[]>`
      insert into idempotency_keys (key, request_hash, status, body, owner)
      values (${key}, ${hash}, 0, '{}', ${owner})
      on conflict (key) do update set key = excluded.key
      returning request_hash, status, body, owner`;
    if (!row) throw new Error('idempotency key upsert returned nothing');
    // Status 0 exists only inside the transaction that claimed the key: ours, just now.
    const claimed = row.status === 0 && row.owner === owner;
    if (!claimed) {
      // Committed earlier (by this request's previous attempt, or by an earlier request).
      if (row.request_hash !== hash) {
        throw new ConflictError(
          422,
          'idempotency_key_reused',
          'this Idempotency-Key was used with a different request body',
        );
      }
      return {
        status: row.status,
        body: JSON.parse(row.body) as unknown,
        replayed: row.owner !== owner,
      };
    }
    const [lo, hi] = input.from < input.to ? [input.from, input.to] : [input.to, input.from];
    const locked = await tx<{ id: string; balance: string }[]>`
      select id, balance from accounts where id in (${lo}, ${hi}) order by id for update`;
    const balances = new Map(locked.map((r) => [Number(r.id), Number(r.balance)]));
    let result: { status: number; body: unknown };
    const from = balances.get(input.from);
    if (from === undefined || !balances.has(input.to)) {
      const missing = from === undefined ? input.from : input.to;
      result = { status: 404, body: errorBody('not_found', `account ${missing} not found`) };
    } else if (from < input.amount) {
      result = {
        status: 409,
        body: errorBody('insufficient_funds', `account ${input.from} has insufficient funds`),
      };
    } else if ((balances.get(input.to) ?? 0) + input.amount > MAX_MONEY) {
      // The destination would pass the largest amount the API can express (2^53 - 1).
      result = {
        status: 400,
        body: errorBody(
          'invalid_request',
          `account ${input.to} cannot hold more than ${MAX_MONEY}`,
        ),
      };
    } else {
      await tx`update accounts set balance = balance - ${input.amount} where id = ${input.from}`;
      await tx`update accounts set balance = balance + ${input.amount} where id = ${input.to}`;
      const [row] = await tx<TransferRow[]>`
        insert into transfers (from_id, to_id, amount) values (${input.from}, ${input.to}, ${input.amount})
        returning id, from_id, to_id, amount, created_at`;
      result = { status: 201, body: toTransfer(row as TransferRow) };
    }
    await tx`update idempotency_keys set status = ${result.status}, body = ${JSON.stringify(result.body)} where key = ${key}`;
    return { ...result, replayed: false };
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
