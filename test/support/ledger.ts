/** Ledger invariants checked in the database, and a bounded mixed load of reads and transfers. */
import { randomUUID } from 'node:crypto';
import { idempotencyKey } from '../../src/ledger/idempotency-key';
import { contract, type SeenResponse } from './openapi';
import { psql } from './postgres';

export interface LoadResult {
  sent: number;
  byStatus: Record<string, number>;
  /** Transfer ids answered 201 (not replays), with the key they were sent with. */
  okTransfers: Array<{ id: number; key: string }>;
  /** Keys of transfers answered 4xx. */
  refusedKeys: string[];
  /** Keys (from the answer's Idempotency-Key) of transfers answered `503 database_unavailable`. */
  unavailableKeys: string[];
  longestMs: number;
  /** Transport errors, missing headers, and every way an answer breaks docs/openapi.json. */
  errors: string[];
  timeline: Array<{ at: number; status: number | string; ms: number }>;
  /** Answers outside 200/201/409/503, for diagnosis. */
  unexpected: Array<{ request: string; status: number; body: unknown }>;
}

export function emptyLoad(): LoadResult {
  return {
    sent: 0,
    byStatus: {},
    okTransfers: [],
    refusedKeys: [],
    unavailableKeys: [],
    longestMs: 0,
    errors: [],
    timeline: [],
    unexpected: [],
  };
}

/** One result for several bursts of load. */
export function mergeLoads(loads: LoadResult[]): LoadResult {
  const out = emptyLoad();
  for (const l of loads) {
    out.sent += l.sent;
    for (const [k, v] of Object.entries(l.byStatus)) out.byStatus[k] = (out.byStatus[k] ?? 0) + v;
    out.okTransfers.push(...l.okTransfers);
    out.refusedKeys.push(...l.refusedKeys);
    out.unavailableKeys.push(...l.unavailableKeys);
    out.longestMs = Math.max(out.longestMs, l.longestMs);
    out.errors.push(...l.errors);
    out.timeline.push(...l.timeline);
    out.unexpected.push(...l.unexpected);
  }
  return out;
}

export async function seedAccounts(base: string, n: number, balance: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${base}/api/accounts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: `load-${i}`, balance }),
    });
    if (res.status !== 201) throw new Error(`seed failed: ${res.status} ${await res.text()}`);
    ids.push(((await res.json()) as { id: number }).id);
  }
  return ids;
}

/**
 * `concurrency` loops, each alternating a GET of an account and a keyed transfer between two
 * random accounts, until `durationMs` has passed (bounded: never more than `maxRequests`).
 */
export async function runLoad(opts: {
  base: string | (() => string);
  accounts: number[];
  durationMs: number;
  concurrency: number;
  maxRequests?: number;
  timeoutMs?: number;
  pauseMs?: number;
  /** Transfers without an Idempotency-Key: the server makes one and names it in the answer. */
  keyless?: boolean;
  /** Ends the load early once this holds (checked before each request); `durationMs` bounds it. */
  until?: () => boolean;
}): Promise<LoadResult> {
  const result = emptyLoad();
  const started = Date.now();
  const until = started + opts.durationMs;
  const max = opts.maxRequests ?? 100000;
  const pick = () => opts.accounts[Math.floor(Math.random() * opts.accounts.length)]!;
  const baseOf = typeof opts.base === 'string' ? () => opts.base as string : opts.base;
  // Checked against docs/openapi.json once the load is over: no work of the check's own (ajv
  // compiling, validating) on this process, which may be the worker's, while the load runs.
  const answers: SeenResponse[] = [];

  async function one(i: number): Promise<void> {
    const t0 = Date.now();
    const read = i % 2 === 0;
    let key: string = randomUUID();
    let status: number | string;
    let request = '';
    try {
      let res: Response;
      if (read) {
        request = `GET /api/accounts/${pick()}`;
        res = await fetch(`${baseOf()}${request.slice(4)}`, {
          signal: AbortSignal.timeout(opts.timeoutMs ?? 30000),
        });
      } else {
        const from = pick();
        let to = pick();
        while (to === from) to = pick();
        request = `POST /api/transfers ${from}->${to}`;
        res = await fetch(`${baseOf()}/api/transfers`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(opts.keyless ? {} : { 'idempotency-key': key }),
          },
          body: JSON.stringify({ from, to, amount: 1 + Math.floor(Math.random() * 5) }),
          signal: AbortSignal.timeout(opts.timeoutMs ?? 30000),
        });
      }
      status = res.status;
      const text = await res.text();
      const [method, path] = read ? ['GET', request.slice(4)] : ['POST', '/api/transfers'];
      answers.push({ method, path, status, headers: res.headers, text });
      const body = JSON.parse(text) as { id?: number; error?: { code?: string } };
      if (!read) {
        const answered = res.headers.get('idempotency-key');
        if (answered === null) result.errors.push('transfer answer without Idempotency-Key');
        else if (!opts.keyless && answered !== key) result.errors.push('Idempotency-Key changed');
        else key = answered;
        if (res.status === 503 && body.error?.code === 'database_unavailable')
          result.unavailableKeys.push(key);
      }
      if (![200, 201, 409, 503].includes(res.status))
        result.unexpected.push({ request, status: res.status, body });
      if (!read && res.status === 201) result.okTransfers.push({ id: body.id as number, key });
      if (!read && res.status >= 400 && res.status < 500) result.refusedKeys.push(key);
      if (res.status === 503 && !res.headers.get('retry-after'))
        result.errors.push('503 without Retry-After');
    } catch (err) {
      status = `error:${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name}`;
      result.errors.push(String(status));
    }
    const ms = Date.now() - t0;
    result.longestMs = Math.max(result.longestMs, ms);
    result.byStatus[String(status)] = (result.byStatus[String(status)] ?? 0) + 1;
    result.timeline.push({ at: t0 - started, status, ms });
  }

  let counter = 0;
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      while (Date.now() < until && counter < max && !opts.until?.()) {
        const i = counter++;
        result.sent += 1;
        await one(i);
        if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
      }
    }),
  );
  for (const answer of answers) result.errors.push(...contract().violations(answer));
  return result;
}

/** The contract's invariants, checked directly in the database. */
export async function checkInvariants(
  url: string,
  load?: Pick<LoadResult, 'okTransfers' | 'refusedKeys'> &
    Partial<Pick<LoadResult, 'unavailableKeys'>>,
): Promise<void> {
  const [sum] = await psql<{ total: string; opening: string; negatives: string }>(
    url,
    `select coalesce(sum(balance),0)::text as total, coalesce(sum(opening_balance),0)::text as opening,
            count(*) filter (where balance < 0)::text as negatives from accounts`,
  );
  if (sum!.total !== sum!.opening)
    throw new Error(`sum of balances ${sum!.total} != opening ${sum!.opening}`);
  if (Number(sum!.negatives) !== 0) throw new Error(`${sum!.negatives} negative balances`);
  // Balances agree with the transfers table: opening balance + received - sent, per account.
  const drift = await psql(
    url,
    `with moves as (
       select from_id as id, -amount as delta from transfers
       union all select to_id, amount from transfers)
     select a.id from accounts a
       left join (select id, sum(delta) as delta from moves group by id) m using (id)
      where a.balance <> a.opening_balance + coalesce(m.delta, 0)`,
  );
  if (drift.length) throw new Error(`${drift.length} accounts disagree with their transfers`);
  if (!load) return;
  const ids = load.okTransfers.map((t) => t.id);
  if (new Set(ids).size !== ids.length)
    throw new Error('two 2xx answers carried the same transfer id');
  if (ids.length) {
    const rows = await psql<{ n: string }>(
      url,
      `select count(*)::text as n from transfers where id in (${ids.join(',')})`,
    );
    if (Number(rows[0]!.n) !== ids.length)
      throw new Error(`only ${rows[0]!.n} of ${ids.length} 2xx transfers exist`);
  }
  const stored = (k: string) => `'${idempotencyKey(k).stored.replace(/'/g, "''")}'`;
  const keys = load.okTransfers.map((t) => stored(t.key));
  if (keys.length) {
    const rows = await psql<{ key: string; status: number; body: string }>(
      url,
      `select key, status, body from idempotency_keys where key in (${keys.join(',')})`,
    );
    if (rows.length !== keys.length) throw new Error('a 2xx transfer has no idempotency record');
  }
  if (load.refusedKeys.length) {
    const refused = load.refusedKeys.map(stored).join(',');
    const rows = await psql<{ n: string }>(
      url,
      `select count(*)::text as n from idempotency_keys k where key in (${refused}) and status between 200 and 299`,
    );
    if (Number(rows[0]!.n) !== 0) throw new Error(`${rows[0]!.n} transfers answered 4xx exist`);
  }
  // A write answered `503 database_unavailable` was not applied (nothing retried these keys).
  if (load.unavailableKeys?.length) {
    const rows = await psql<{ n: string }>(
      url,
      `select count(*)::text as n from idempotency_keys where key in (${load.unavailableKeys.map(stored).join(',')})`,
    );
    if (Number(rows[0]!.n) !== 0)
      throw new Error(`${rows[0]!.n} transfers answered 503 database_unavailable were applied`);
  }
  // Each transfer row has exactly one idempotency record that produced it.
  const [dups] = await psql<{ n: string }>(
    url,
    `select count(*)::text as n from (
       select body::json->>'id' as id from idempotency_keys where status = 201
       group by 1 having count(*) > 1) d`,
  );
  if (Number(dups!.n) !== 0) throw new Error(`${dups!.n} transfers recorded under two keys`);
}
