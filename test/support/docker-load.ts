/**
 * Bounded client loads for the deploy/docker tests.
 *
 * `stopUnderLoad`: N clients, each with its own keep-alive connection (undici `Client`), send
 * reads back to back; a stop runs after `loadMs`; a client ends when an answer tells it
 * `Connection: close` (the draining server says so on every answer) or when it fails.
 *
 * `retryingLoad`: logical operations (a keyed transfer, or a read) that a client retries on 503
 * and on a lost connection, as the contract allows: the same Idempotency-Key, so a transfer is
 * applied at most once whatever happens; an operation fails only if it has no final answer
 * within its deadline.
 */
import { randomUUID } from 'node:crypto';
import { Agent, Client, request } from 'undici';

interface Answer {
  start: number;
  end: number;
  status?: number;
  error?: string;
}

export interface StopResult {
  failed: Answer[];
  answered: number;
  answeredAfterStop: number;
  toldToClose: number;
  report: {
    requests: number;
    lastAnswerAfterStopMs: number;
    stopReturnedAfterStopMs: number;
    exitAfterLastAnswerMs: number;
  };
}

export async function stopUnderLoad(opts: {
  base: string;
  clients: number;
  loadMs: number;
  stop: () => Promise<unknown>;
  /** Hard bound on each client's requests. */
  maxPerClient?: number;
}): Promise<StopResult> {
  const answers: Answer[] = [];
  let toldToClose = 0;
  const max = opts.maxPerClient ?? 20_000;
  const loop = async () => {
    const client = new Client(opts.base, { headersTimeout: 30_000, bodyTimeout: 30_000 });
    try {
      for (let i = 0; i < max; i++) {
        const a: Answer = { start: Date.now(), end: 0 };
        answers.push(a);
        try {
          const res = await client.request({ path: '/readyz', method: 'GET' });
          await res.body.text();
          a.status = res.statusCode;
          a.end = Date.now();
          if (res.headers.connection === 'close') {
            toldToClose += 1;
            return;
          }
        } catch (err) {
          a.end = Date.now();
          a.error = (err as { code?: string }).code ?? (err as Error).name;
          return;
        }
      }
    } finally {
      await client.close().catch(() => undefined);
    }
  };
  const loops = Array.from({ length: opts.clients }, loop);
  await new Promise((r) => setTimeout(r, opts.loadMs));
  const stopAt = Date.now();
  const stopped = opts.stop().then(() => Date.now());
  await Promise.all(loops);
  const stoppedAt = await stopped;
  const lastAnswer = Math.max(...answers.map((a) => a.end));
  // /readyz: 200 before the stop, 503 shutting_down once draining; both are answers.
  const failed = answers.filter(
    (a) => a.error !== undefined || (a.status !== 200 && a.status !== 503),
  );
  return {
    failed,
    answered: answers.length - failed.length,
    answeredAfterStop: answers.filter((a) => a.end >= stopAt && !a.error).length,
    toldToClose,
    report: {
      requests: answers.length,
      lastAnswerAfterStopMs: lastAnswer - stopAt,
      stopReturnedAfterStopMs: stoppedAt - stopAt,
      exitAfterLastAnswerMs: stoppedAt - lastAnswer,
    },
  };
}

export interface Operation {
  kind: 'transfer' | 'read';
  key: string;
  attempts: number;
  /** The final answer's status (undefined: none within the deadline). */
  status?: number;
  transferId?: number;
  /** Which replica gave each answer (the balancer's X-Keel-Replica header). */
  replicas: string[];
  /** Statuses and errors of the attempts before the final one. */
  retried: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface RetryingLoad {
  ops: Operation[];
  /** Stops after the operations in progress end; resolves when every loop is done. */
  stop(): Promise<Operation[]>;
}

export function retryingLoad(opts: {
  base: string;
  accounts: number[];
  concurrency: number;
  /** Longest time one logical operation may take, retries included. */
  opDeadlineMs: number;
  maxOps: number;
}): RetryingLoad {
  const agent = new Agent({ headersTimeout: 20_000, bodyTimeout: 20_000, connectTimeout: 5000 });
  const ops: Operation[] = [];
  let stopped = false;
  const pick = () => opts.accounts[Math.floor(Math.random() * opts.accounts.length)]!;

  async function attempt(op: Operation, body: string | undefined, path: string) {
    const res = await request(`${opts.base}${path}`, {
      dispatcher: agent,
      method: body ? 'POST' : 'GET',
      headers: body ? { 'content-type': 'application/json', 'idempotency-key': op.key } : undefined,
      body,
    });
    const replica = res.headers['x-keel-replica'];
    if (typeof replica === 'string') op.replicas.push(replica);
    const json = (await res.body.json().catch(() => ({}))) as { id?: number };
    const retryAfter = Number(res.headers['retry-after'] ?? 0);
    return { status: res.statusCode, id: json.id, retryAfter };
  }

  async function run(op: Operation, body: string | undefined, path: string) {
    const until = Date.now() + opts.opDeadlineMs;
    while (Date.now() < until) {
      op.attempts += 1;
      try {
        const a = await attempt(op, body, path);
        if (a.status !== 503) {
          op.status = a.status;
          op.transferId = a.id;
          return;
        }
        op.retried.push('503');
        // Retry-After is in seconds; a short pause keeps the test quick and the server unflooded.
        await sleep(Math.min(1000, Math.max(100, a.retryAfter * 1000)));
      } catch (err) {
        op.retried.push((err as { code?: string }).code ?? (err as Error).name);
        await sleep(200);
      }
    }
  }

  const loops = Array.from({ length: opts.concurrency }, async (_, n) => {
    for (let i = 0; !stopped && ops.length < opts.maxOps; i++) {
      const transfer = (i + n) % 2 === 0;
      const op: Operation = {
        kind: transfer ? 'transfer' : 'read',
        key: randomUUID(),
        attempts: 0,
        replicas: [],
        retried: [],
      };
      ops.push(op);
      if (transfer) {
        const from = pick();
        let to = pick();
        while (to === from) to = pick();
        const amount = 1 + Math.floor(Math.random() * 5);
        await run(op, JSON.stringify({ from, to, amount }), '/api/transfers');
      } else {
        await run(op, undefined, `/api/accounts/${pick()}`);
      }
    }
  });
  const done = Promise.all(loops).then(async () => {
    await agent.close();
    return ops;
  });
  return {
    ops,
    stop() {
      stopped = true;
      return done;
    },
  };
}
