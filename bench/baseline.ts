/**
 * BASELINE FOR THE BENCHMARK — NOT PRODUCT CODE.
 *
 * The smallest node:http + postgres.js server that answers the two endpoints the benchmark
 * drives, with the same SQL as Keel's (src/ledger/transfers.ts): the idempotency row first,
 * both account rows locked in id order, the balance check, two updates, the transfer row and the
 * stored answer, in one transaction. No framework, no logging, no validation beyond what the SQL
 * needs, no retries, no metrics: the ceiling for any Node app on this machine.
 *
 * node build/bench/baseline.js (compiled by `npm run bench`), with BASELINE_DATABASE_URL,
 * BASELINE_PORT, BASELINE_WORKERS and BASELINE_POOL_MAX in the environment. The primary forks
 * the workers (node:cluster) and sends {type:'ready', pids} over IPC once every worker listens;
 * SIGTERM/SIGINT stop everything.
 */
import cluster from 'node:cluster';
import crypto from 'node:crypto';
import http from 'node:http';
import { Buffer } from 'node:buffer';
import postgres from 'postgres';

interface Transfer {
  from: number;
  to: number;
  amount: number;
}

interface Outcome {
  status: number;
  body: string;
  replayed?: boolean;
}

const env = process.env;
const url = env.BASELINE_DATABASE_URL as string;
const port = Number(env.BASELINE_PORT || 3100);
const workers = Number(env.BASELINE_WORKERS || 2);
const poolMax = Number(env.BASELINE_POOL_MAX || 10);

function primary() {
  const pids: number[] = [];
  let listening = 0;
  let stopping = false;
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('listening', (worker) => {
    pids.push(worker.process.pid as number);
    listening += 1;
    if (listening === workers) process.send?.({ type: 'ready', pids });
  });
  cluster.on('exit', (worker, code) => {
    if (!stopping) {
      process.stderr.write(`baseline worker ${worker.process.pid} died (${code})\n`);
      process.exit(1);
    }
  });
  const stop = () => {
    if (stopping) return;
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    // A worker stuck in sql.end gets 5 s; then the primary leaves anyway (the runner kills by pid).
    setTimeout(() => process.exit(0), 5000).unref();
    cluster.on('exit', () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('disconnect', stop);
}

function worker() {
  const sql = postgres(url, { max: poolMax, onnotice: () => undefined });
  const ACCOUNT = /^\/api\/accounts\/([1-9]\d{0,15})$/;

  const send = (
    res: http.ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  };
  const error = (code: string, message: string) => ({ error: { code, message } });
  const account = (r: postgres.Row) => ({
    id: Number(r.id),
    name: r.name,
    balance: Number(r.balance),
    created_at: r.created_at.toISOString(),
  });

  async function getAccount(res: http.ServerResponse, id: number): Promise<void> {
    const [row] = await sql`select id, name, balance, created_at from accounts where id = ${id}`;
    if (!row) return send(res, 404, error('not_found', `account ${id} not found`));
    send(res, 200, account(row));
  }

  async function transfer(
    tx: postgres.TransactionSql,
    t: Transfer,
    key: string,
    hash: string,
    owner: string,
  ): Promise<Outcome> {
    const claimed = await tx`
      insert into idempotency_keys (key, request_hash, status, body, owner)
      values (${key}, ${hash}, 0, '{}', ${owner})
      on conflict (key) do nothing
      returning key`;
    if (claimed.length === 0) {
      const [stored] =
        await tx`select request_hash, status, body from idempotency_keys where key = ${key}`;
      if (stored!.request_hash !== hash) {
        return { status: 422, body: JSON.stringify(error('idempotency_key_reused', 'reused')) };
      }
      return { status: stored!.status, body: stored!.body, replayed: true };
    }
    const [lo, hi] = t.from < t.to ? [t.from, t.to] : [t.to, t.from];
    const locked = await tx`
      select id, balance from accounts where id in (${lo}, ${hi}) order by id for update`;
    const from = locked.find((r) => Number(r.id) === t.from);
    let status: number;
    let body: unknown;
    if (!from || !locked.some((r) => Number(r.id) === t.to)) {
      status = 404;
      body = error('not_found', 'account not found');
    } else if (Number(from.balance) < t.amount) {
      status = 409;
      body = error('insufficient_funds', `account ${t.from} has insufficient funds`);
    } else {
      await tx`update accounts set balance = balance - ${t.amount} where id = ${t.from}`;
      await tx`update accounts set balance = balance + ${t.amount} where id = ${t.to}`;
      const [row] = await tx`
        insert into transfers (from_id, to_id, amount) values (${t.from}, ${t.to}, ${t.amount})
        returning id, from_id, to_id, amount, created_at`;
      status = 201;
      body = {
        id: Number(row!.id),
        from: Number(row!.from_id),
        to: Number(row!.to_id),
        amount: Number(row!.amount),
        created_at: row!.created_at.toISOString(),
      };
    }
    const text = JSON.stringify(body);
    await tx`update idempotency_keys set status = ${status}, body = ${text} where key = ${key}`;
    return { status, body: text };
  }

  async function postTransfer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let raw = '';
    req.setEncoding('utf8');
    for await (const chunk of req) raw += chunk;
    let t: Transfer | null;
    try {
      t = JSON.parse(raw) as Transfer | null;
    } catch {
      return send(res, 400, error('invalid_request', 'bad json'));
    }
    const ok = (v: unknown) => Number.isSafeInteger(v) && (v as number) > 0;
    if (!t || !ok(t.from) || !ok(t.to) || !ok(t.amount) || t.from === t.to) {
      return send(res, 400, error('invalid_request', 'bad transfer'));
    }
    const owner = crypto.randomUUID();
    const given = req.headers['idempotency-key'];
    const key = given ? `client:${given}` : `gen:${owner}`;
    const hash = crypto
      .createHash('sha256')
      .update(JSON.stringify([t.from, t.to, t.amount]))
      .digest('hex');
    const checked = t;
    const out = (await sql.begin((tx) => transfer(tx, checked, key, hash, owner))) as Outcome;
    send(res, out.status, out.body, out.replayed ? { 'idempotent-replayed': 'true' } : {});
  }

  const server = http.createServer((req, res) => {
    const m = req.method === 'GET' ? ACCOUNT.exec(req.url ?? '') : null;
    const work = m
      ? getAccount(res, Number(m[1]))
      : req.method === 'POST' && req.url === '/api/transfers'
        ? postTransfer(req, res)
        : Promise.resolve(send(res, 404, error('not_found', 'no route')));
    work.catch(() => {
      if (!res.headersSent) send(res, 503, error('database_unavailable', 'database error'));
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 65000;
  server.listen(port, '127.0.0.1');
  const stop = () => {
    server.close();
    server.closeIdleConnections();
    void sql.end({ timeout: 2 }).finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (cluster.isPrimary) primary();
else worker();
