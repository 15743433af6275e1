/**
 * Transfers: one transaction whose one statement (keel_transfer_v2, migrations/0004-0005) records
 * the idempotency key, locks both accounts in id order (no deadlock between opposite transfers),
 * checks the balance and moves the money. Refusals (404, 409, 400) are stored under the key too,
 * as the error catalogue writes them, so a replay answers the same bytes. A transfer's JSON is
 * written by one serializer, keel_transfer_json (migrations/0005): the stored 201 and the reads
 * here both come from it.
 */
import { createHash, randomUUID } from 'node:crypto';
import { errorBody, refusalError, type Refusal } from '../errors';
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

/** An answer stored under an idempotency key, as first sent (a transfer, or an error body). */
export interface StoredResponse {
  status: number;
  body: unknown;
  replayed: boolean;
}

/** What `create` learned: the stored answer, or a refusal made by this request just now. */
export type TransferOutcome =
  ({ refused?: undefined } & StoredResponse) | { refused: Refusal; replayed: false };

export interface Transfers {
  /** `key`: the client's Idempotency-Key, or one generated for this request (./idempotency-key). */
  create(input: NewTransfer, key: IdempotencyKey, ctx: WorkContext): Promise<TransferOutcome>;
  get(id: number, ctx: WorkContext): Promise<Transfer>;
  listForAccount(
    accountId: number,
    page: Page,
    ctx: WorkContext,
  ): Promise<{ items: Transfer[]; next: number | null }>;
}

/** A transfer as keel_transfer_json wrote it: the same JSON a 201 stored under a key. */
const parsed = (r: { body: string }): Transfer => JSON.parse(r.body) as Transfer;

function requestHash(input: NewTransfer): string {
  return createHash('sha256')
    .update(JSON.stringify([input.from, input.to, input.amount]))
    .digest('hex');
}

/** The refusals keel_transfer_v2 may store, by the name it gives them. */
function refusals(input: NewTransfer): Record<RefusalName, Refusal> {
  return {
    from_not_found: { kind: 'account_not_found', account: input.from },
    to_not_found: { kind: 'account_not_found', account: input.to },
    insufficient_funds: { kind: 'insufficient_funds', account: input.from },
    balance_limit: { kind: 'balance_limit', account: input.to, max: MAX_MONEY },
  };
}

type RefusalName = 'from_not_found' | 'to_not_found' | 'insufficient_funds' | 'balance_limit';

/** Each refusal's stored answer, written by the catalogue's serializer. */
function storedRefusals(possible: Record<RefusalName, Refusal>): string {
  const answers: Record<string, { status: number; body: unknown }> = {};
  for (const [name, refusal] of Object.entries(possible)) {
    const err = refusalError(refusal);
    answers[name] = { status: err.status, body: errorBody(err) };
  }
  return JSON.stringify(answers);
}

export function createTransfers({ db }: { db: Db }): Transfers {
  /** The transfer's one statement (migrations/0004_transfer_refusals.sql): claim, lock, move, answer. */
  async function apply(
    tx: Tx,
    input: NewTransfer,
    key: string,
    hash: string,
    owner: string,
  ): Promise<TransferOutcome> {
    const possible = refusals(input);
    const [row] = await tx<
      {
        fresh: boolean;
        status: number;
        body: string;
        owner: string;
        request_hash: string;
        refusal: RefusalName | null;
      }[]
    >`
      select fresh, status, body, owner, request_hash, refusal from keel_transfer_v2(
        ${key}, ${hash}, ${owner}, ${input.from}, ${input.to}, ${input.amount}, ${MAX_MONEY},
        ${storedRefusals(possible)})`;
    if (!row) throw new Error('keel_transfer_v2 returned nothing');
    if (!row.fresh && row.request_hash !== hash) throw refusalError({ kind: 'key_reused' });
    if (row.refusal) return { refused: possible[row.refusal], replayed: false };
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
            { body: string }[]
          >`select keel_transfer_json(t) as body from transfers t where id = ${id}`,
        ctx,
      );
      if (!rows[0]) throw refusalError({ kind: 'transfer_not_found', transfer: id });
      return parsed(rows[0]);
    },
    async listForAccount(accountId, { limit, after }, ctx) {
      const rows = await db.read(async (sql) => {
        const acct = await sql`select 1 from accounts where id = ${accountId}`;
        if (acct.length === 0) return null;
        return sql<{ body: string }[]>`
          select keel_transfer_json(t) as body from transfers t
          where id > ${after} and (from_id = ${accountId} or to_id = ${accountId})
          order by id limit ${limit + 1}`;
      }, ctx);
      if (rows === null) throw refusalError({ kind: 'account_not_found', account: accountId });
      const items = rows.slice(0, limit).map(parsed);
      const next = rows.length > limit ? (items[items.length - 1]?.id ?? null) : null;
      return { items, next };
    },
  };
}
