/** Accounts: create, fetch, page through. */
import { randomUUID } from 'node:crypto';
import { refusalError } from '../errors';
import type { Db, WorkContext } from '../db/runner';
import type { NewAccount, Page } from './money';

export interface Account {
  id: number;
  name: string;
  balance: number;
  created_at: string;
}

interface AccountRow {
  id: string;
  name: string;
  balance: string;
  created_at: Date;
}

function toAccount(r: AccountRow): Account {
  return {
    id: Number(r.id),
    name: r.name,
    balance: Number(r.balance),
    created_at: r.created_at.toISOString(),
  };
}

export interface Accounts {
  create(input: NewAccount, ctx: WorkContext): Promise<Account>;
  get(id: number, ctx: WorkContext): Promise<Account>;
  list(page: Page, ctx: WorkContext): Promise<{ items: Account[]; next: number | null }>;
}

export function createAccounts({ db }: { db: Db }): Accounts {
  return {
    // The per-request creation key makes the retry after an ambiguous COMMIT exactly-once.
    async create(input, ctx) {
      const key = randomUUID();
      const rows = await db.transaction(async (tx) => {
        const inserted = await tx<AccountRow[]>`
          insert into accounts (name, balance, opening_balance, creation_key)
          values (${input.name}, ${input.balance ?? 0}, ${input.balance ?? 0}, ${key})
          on conflict (creation_key) do nothing
          returning id, name, balance, created_at`;
        if (inserted.length) return inserted;
        return tx<AccountRow[]>`
          select id, name, balance, created_at from accounts where creation_key = ${key}`;
      }, ctx);
      return toAccount(rows[0] as AccountRow);
    },
    async get(id, ctx) {
      const rows = await db.read(
        (sql) =>
          sql<AccountRow[]>`select id, name, balance, created_at from accounts where id = ${id}`,
        ctx,
      );
      if (!rows[0]) throw refusalError({ kind: 'account_not_found', account: id });
      return toAccount(rows[0]);
    },
    async list({ limit, after }, ctx) {
      const rows = await db.read(
        (sql) => sql<AccountRow[]>`
          select id, name, balance, created_at from accounts
          where id > ${after} order by id limit ${limit + 1}`,
        ctx,
      );
      const items = rows.slice(0, limit).map(toAccount);
      const next = rows.length > limit ? (items[items.length - 1]?.id ?? null) : null;
      return { items, next };
    },
  };
}
