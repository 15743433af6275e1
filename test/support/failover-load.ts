/**
 * A client load for failover tests that behaves as a careful client does: every logical
 * operation (a read, or a keyed transfer) is retried with the same Idempotency-Key on a 503 or
 * a network error, with a bounded backoff, so "0 failed operations" means no operation a user
 * started was lost, and `errorAttempts` counts what the failover cost in retries.
 */
import { randomUUID } from 'node:crypto';

export interface FailoverLoadResult {
  ops: number;
  /** Logical operations that never got a final answer (2xx, or a domain 4xx). */
  failedOps: number;
  /** Attempts answered 5xx or not at all, retried. */
  errorAttempts: number;
  byStatus: Record<string, number>;
  okTransfers: Array<{ id: number; key: string }>;
  refusedKeys: string[];
  /** Date.now() of each 2xx transfer answer, in order. */
  okAt: number[];
}

export interface FailoverLoad {
  /** The result so far (the load goes on). */
  live(): FailoverLoadResult;
  stop(): Promise<FailoverLoadResult>;
}

// An attempt waits for the service's own deadline (10 s); a logical operation gives up after 40
// attempts with backoff capped at 500 ms: bounded, and longer than any failover here.
const MAX_ATTEMPTS = 40;

export function startFailoverLoad(opts: {
  base: string;
  accounts: number[];
  concurrency: number;
}): FailoverLoad {
  const r: FailoverLoadResult = {
    ops: 0,
    failedOps: 0,
    errorAttempts: 0,
    byStatus: {},
    okTransfers: [],
    refusedKeys: [],
    okAt: [],
  };
  let stopped = false;
  // After stop(), an operation still retrying gets this long to settle, then counts as failed:
  // a load that cannot finish reports it instead of outliving the test's own timeout.
  let settleBy = Infinity;
  const pick = () => opts.accounts[Math.floor(Math.random() * opts.accounts.length)]!;

  async function op(i: number): Promise<void> {
    const read = i % 2 === 0;
    const key = randomUUID();
    const from = pick();
    let to = pick();
    while (to === from) to = pick();
    const body = JSON.stringify({ from, to, amount: 1 + Math.floor(Math.random() * 5) });
    r.ops += 1;
    for (let attempt = 0; attempt < MAX_ATTEMPTS && Date.now() < settleBy; attempt++) {
      let status: number | string;
      let retryAfterS = 0;
      try {
        const res = read
          ? await fetch(`${opts.base}/api/accounts/${from}`, { signal: AbortSignal.timeout(12000) })
          : await fetch(`${opts.base}/api/transfers`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', 'idempotency-key': key },
              body,
              signal: AbortSignal.timeout(12000),
            });
        status = res.status;
        retryAfterS = Number(res.headers.get('retry-after') ?? 0);
        const json = (await res.json()) as { id?: number };
        if (res.status < 500) {
          r.byStatus[status] = (r.byStatus[status] ?? 0) + 1;
          if (!read && res.status === 201) {
            r.okTransfers.push({ id: json.id!, key });
            r.okAt.push(Date.now());
          }
          if (!read && res.status >= 400) r.refusedKeys.push(key);
          return;
        }
      } catch (err) {
        status = `error:${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name}`;
      }
      r.byStatus[status] = (r.byStatus[status] ?? 0) + 1;
      r.errorAttempts += 1;
      const backoff = Math.min(500, 25 * 2 ** attempt);
      await new Promise((res) => setTimeout(res, Math.min(backoff, retryAfterS * 1000 || backoff)));
    }
    r.failedOps += 1;
  }

  let counter = 0;
  const loops = Array.from({ length: opts.concurrency }, async () => {
    while (!stopped) await op(counter++);
  });
  return {
    live: () => r,
    async stop() {
      stopped = true;
      settleBy = Date.now() + 20000;
      await Promise.all(loops);
      return r;
    },
  };
}

/** Milliseconds from `since` to the first 2xx transfer answered after it (null: none). */
export function firstOkAfter(r: FailoverLoadResult, since: number): number | null {
  const t = r.okAt.find((at) => at >= since);
  return t === undefined ? null : t - since;
}
