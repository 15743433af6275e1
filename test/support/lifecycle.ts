/**
 * Helpers for the PM2 lifecycle tests: raw HTTP/1.1 connections pinned to one worker, watching
 * processes (by pid) until they exit, and what the database and PM2's log files say about them.
 */
import fs from 'node:fs';
import net from 'node:net';
import { getFresh } from './http';
import { psql } from './postgres';
import { processTable } from './procfs';
import { takeResponse, type RawResponse } from './raw-http';
import { untilValue } from './wait';

/** One HTTP/1.1 keep-alive connection, one request at a time, so the test knows its worker. */
export interface RawConn {
  request(path: string): Promise<RawResponse>;
  /** Resolves when the server (or we) closed the socket. */
  closed: Promise<void>;
  close(): void;
}

function rawConnect(port: number): Promise<RawConn> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    let pending: { resolve: (r: RawResponse) => void; reject: (e: Error) => void } | null = null;
    const closed = new Promise<void>((r) => socket.once('close', () => r()));

    const parse = () => {
      if (!pending) return;
      const taken = takeResponse(buf);
      if (!taken) return;
      buf = taken.rest;
      const p = pending;
      pending = null;
      p.resolve(taken.response);
    };

    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      parse();
    });
    socket.on('error', () => undefined);
    socket.once('close', () => {
      pending?.reject(new Error('socket closed before the answer'));
      pending = null;
    });
    socket.once('connect', () =>
      resolve({
        closed,
        close: () => socket.destroy(),
        request(path) {
          if (pending) return Promise.reject(new Error('one request at a time'));
          if (socket.destroyed) return Promise.reject(new Error('socket closed'));
          return new Promise((res, rej) => {
            pending = { resolve: res, reject: rej };
            socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
          });
        },
      }),
    );
    socket.once('error', reject);
  });
}

/**
 * Opens `n` keep-alive connections that PM2's master handed to the worker with `pid` (it
 * balances new connections round-robin, so about every other one lands there).
 */
export async function connectionsTo(port: number, pid: number, n: number): Promise<RawConn[]> {
  const kept: RawConn[] = [];
  for (let attempt = 0; kept.length < n && attempt < n * 10; attempt++) {
    const conn = await rawConnect(port);
    const res = await conn.request('/__test/whoami');
    if ((JSON.parse(res.body) as { pid: number }).pid === pid) kept.push(conn);
    else conn.close();
  }
  if (kept.length < n) throw new Error(`only ${kept.length} of ${n} connections reached ${pid}`);
  return kept;
}

/**
 * Start times (clock ticks since boot, /proc/<pid>/stat field 22) of the processes the tests
 * found: a pid is reused once its process is gone (pid_max is 32768 here, and a busy run with
 * Postgres forking a backend per connection wraps it in minutes), so a pid remembered from an
 * earlier step may name somebody else's process later, a Postgres backend of the shared server
 * included. `alive` says false for such a pid, so nothing kills or waits for a stranger.
 */
const startTimes = new Map<number, string>();

function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name start at field 3 (state); starttime is field 22.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Remembers who `pid` is now (a child just spawned), so a later reuse of it is not `alive`. */
export function remember(pid: number): void {
  const t = startTime(pid);
  if (t !== undefined) startTimes.set(pid, t);
}

/** True while the process exists, is not a zombie, and is the one remembered under its pid. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') return false;
  } catch {
    return process.platform !== 'linux';
  }
  const known = startTimes.get(pid);
  return known === undefined || startTime(pid) === known;
}

/** Resolves with Date.now() at the first poll that finds none of `pids` alive. */
export async function waitGone(pids: number[], timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (!pids.some(alive)) return Date.now();
    if (Date.now() > until) throw new Error(`still alive after ${timeoutMs} ms: ${pids}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Every live descendant of `pid` (Linux /proc). */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const { pid: child, ppid } of processTable()) {
    children.set(ppid, [...(children.get(ppid) ?? []), child]);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  // Each is ours now: remember it, so that once it is gone its pid's next owner is not.
  for (const p of out) remember(p);
  return out.filter(alive);
}

/** Database sessions of one worker (`application_name` keel:<pm_id>:<pid>[:migrate]). */
export async function sessionsOf(url: string, pmId: number, pid: number): Promise<number> {
  const rows = await psql<{ n: string }>(
    url,
    `select count(*)::text as n from pg_stat_activity where application_name like 'keel:${pmId}:${pid}%'`,
  );
  return Number(rows[0]!.n);
}

/** Sessions of one worker currently inside pg_sleep (the slow test route). */
export async function sleepingIn(url: string, pmId: number, pid: number): Promise<number> {
  const rows = await psql<{ n: string }>(
    url,
    `select count(*)::text as n from pg_stat_activity
      where application_name = 'keel:${pmId}:${pid}' and query like '%pg_sleep%' and state = 'active'`,
  );
  return Number(rows[0]!.n);
}

/** The JSON lines the workers wrote (PM2 merges them into one file per app). */
export function workerLogs(pm2Home: string, app = 'web'): Array<Record<string, unknown>> {
  const file = `${pm2Home}/logs/${app}-out.log`;
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
}

/**
 * `n` slow test requests (`/__test/slow`), each on a fresh connection (PM2 spreads them), and
 * waits until all `n` are inside pg_sleep; `answers` settles when they are answered (status 0
 * on an error). Wrapped, because an awaited promise of a promise would wait for the answers.
 */
export async function slowInFlight(
  base: string,
  url: string,
  n: number,
  ms: number,
): Promise<{ answers: Promise<Array<{ status: number; body: string }>> }> {
  const slow = Array.from({ length: n }, () =>
    getFresh(`${base}/__test/slow?ms=${ms}`, 15000).catch((e: Error) => ({
      status: 0,
      body: e.message,
    })),
  );
  await untilValue(
    () =>
      psql<{ n: string }>(
        url,
        `select count(*)::text as n from pg_stat_activity
          where datname = current_database() and query like '%pg_sleep%' and state = 'active'
            and application_name like 'keel:%'`,
      ).then((rows) => Number(rows[0]!.n)),
    (found) => found === n,
    10000,
    'slow requests in flight',
  );
  return { answers: Promise.all(slow) };
}
