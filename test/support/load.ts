/**
 * A bounded client load for the lifecycle tests that records every request: reads and keyed
 * transfers over keep-alive sockets and over a fresh connection per request.
 */
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'undici';

export interface Sample {
  /** Which client loop sent it; a loop has one request outstanding at a time. */
  loop: number;
  kind: 'read' | 'transfer';
  /** `keep-alive` reuses pooled sockets; `fresh` opens a connection per request. */
  conn: 'keep-alive' | 'fresh';
  /** Date.now() when the request was sent and when its answer (or error) came. */
  start: number;
  end: number;
  status?: number;
  /** Error code (ECONNREFUSED, ECONNRESET, UND_ERR_SOCKET...) when no answer came. */
  error?: string;
  key?: string;
  transfer?: { from: number; to: number; amount: number };
  transferId?: number;
}

export interface LoadOptions {
  base: string;
  accounts: number[];
  /** Loops running at once; even ones use keep-alive sockets, odd ones fresh connections. */
  concurrency: number;
  /** Hard bounds: the load ends at whichever comes first, or at `stop()`. */
  maxMs: number;
  maxRequests: number;
  /** Longest wait for an answer's headers or body (default 15 s). */
  timeoutMs?: number;
}

export interface Load {
  samples: Sample[];
  /** Ends the loops after their current request and closes every client socket. */
  stop(): Promise<Sample[]>;
}

// After a connection error a loop waits this long, so a service that is gone is not hammered.
const ERROR_PAUSE_MS = 20;

export function startLoad(opts: LoadOptions): Load {
  const samples: Sample[] = [];
  const until = Date.now() + opts.maxMs;
  let stopped = false;
  const wait = opts.timeoutMs ?? 15000;
  const timeouts = { headersTimeout: wait, bodyTimeout: wait, connectTimeout: 5000 };
  const keepAlive = new Agent(timeouts);
  // pipelining 0: undici sends `Connection: close` and opens a new connection per request.
  const fresh = new Agent({ ...timeouts, pipelining: 0 });
  const pick = () => opts.accounts[Math.floor(Math.random() * opts.accounts.length)]!;

  async function one(loop: number, i: number, conn: Sample['conn']): Promise<Sample> {
    const dispatcher = conn === 'keep-alive' ? keepAlive : fresh;
    const kind = i % 2 === 0 ? 'read' : 'transfer';
    const s: Sample = { loop, kind, conn, start: Date.now(), end: 0 };
    try {
      if (s.kind === 'read') {
        const res = await request(`${opts.base}/api/accounts/${pick()}`, { dispatcher });
        s.status = res.statusCode;
        await res.body.text();
      } else {
        const from = pick();
        let to = pick();
        while (to === from) to = pick();
        s.key = randomUUID();
        s.transfer = { from, to, amount: 1 + Math.floor(Math.random() * 5) };
        const res = await request(`${opts.base}/api/transfers`, {
          dispatcher,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': s.key },
          body: JSON.stringify(s.transfer),
        });
        s.status = res.statusCode;
        const body = (await res.body.json()) as { id?: number };
        if (res.statusCode === 201) s.transferId = body.id;
      }
    } catch (err) {
      s.error = (err as { code?: string }).code ?? (err as Error).name;
    }
    s.end = Date.now();
    return s;
  }

  let sent = 0;
  const loops = Array.from({ length: opts.concurrency }, async (_, loop) => {
    const conn = loop % 2 === 0 ? 'keep-alive' : 'fresh';
    for (let i = loop; !stopped && Date.now() < until && sent < opts.maxRequests; i++) {
      sent += 1;
      const s = await one(loop, i, conn);
      samples.push(s);
      if (s.error) await new Promise((r) => setTimeout(r, ERROR_PAUSE_MS));
    }
  });
  const done = Promise.all(loops).then(async () => {
    await Promise.all([keepAlive.close(), fresh.close()]);
    return samples;
  });
  return {
    samples,
    stop() {
      stopped = true;
      return done;
    },
  };
}

/** Counts by status or error code, for assertions and the report. */
export function tally(samples: Sample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) {
    const k = s.error ? `error:${s.error}` : String(s.status);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/** Samples a client would call failed: no answer, or a 5xx. */
export function failures(samples: Sample[]): Sample[] {
  return samples.filter((s) => s.error !== undefined || (s.status ?? 0) >= 500);
}

/** The ledger's view of a load: 2xx transfer ids and the keys of refused ones. */
export function ledgerOutcome(samples: Sample[]): {
  okTransfers: Array<{ id: number; key: string }>;
  refusedKeys: string[];
} {
  const transfers = samples.filter((s) => s.kind === 'transfer' && s.status !== undefined);
  return {
    okTransfers: transfers
      .filter((s) => s.status === 201)
      .map((s) => ({ id: s.transferId!, key: s.key! })),
    refusedKeys: transfers.filter((s) => s.status! >= 400 && s.status! < 500).map((s) => s.key!),
  };
}
