/** Round-trip latency of `select 1`: on one connection, and through a pool of DB_POOL_MAX. */
import type { Config } from '../../config/config';
import type { Clients, Sql } from '../../db/probe-clients';
import { check, type Check } from './report';

export interface Spread {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

function spread(samples: number[]): Spread {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? 0;
  const r = (v: number) => Math.round(v * 100) / 100;
  return { n: s.length, p50: r(at(0.5)), p99: r(at(0.99)), max: r(s[s.length - 1] ?? 0) };
}

// A transfer is about six round trips: at 25 ms each the database alone costs 150 ms a request.
const SLOW_P50_MS = 25;
// A p99 this far above the median on an idle path means a jittery network or a busy server.
const JITTER_FACTOR = 10;
const JITTER_FLOOR_MS = 50;

function verdict(id: 'latency.direct' | 'latency.pool', what: string, s: Spread): Check {
  const text = `p50 ${s.p50} ms, p99 ${s.p99} ms, max ${s.max} ms over ${s.n} round trips ${what}`;
  const data = { ...s };
  if (s.p50 > SLOW_P50_MS)
    return check(
      id,
      'warn',
      s.p50,
      'ms',
      text,
      'run Keel in the same region (or private network) as the database',
      data,
    );
  if (s.p99 > s.p50 * JITTER_FACTOR && s.p99 > JITTER_FLOOR_MS)
    return check(
      id,
      'warn',
      s.p50,
      'ms',
      `${text}: the tail is far above the median`,
      'look for a busy server or a congested path',
      data,
    );
  return check(id, 'ok', s.p50, 'ms', text, null, data);
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await run();
  return performance.now() - t0;
}

export async function checkLatency(
  config: Config,
  clients: Clients,
  direct: Sql,
  rounds: number,
  signal: AbortSignal,
): Promise<Check[]> {
  const one: number[] = [];
  for (let i = 0; i < rounds && !signal.aborted; i++) one.push(await timed(() => direct`select 1`));

  // The pool as the workers configure it: DB_POOL_MAX connections, all busy at once.
  const width = config.db.poolMax;
  const pool = clients.open(config.db.url, { max: width, prepare: config.db.prepare });
  await Promise.all(Array.from({ length: width }, () => pool`select 1`)); // connect them all first
  const many: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < rounds && !signal.aborted) {
        next += 1;
        many.push(await timed(() => pool`select 1`));
      }
    }),
  );
  await pool.end({ timeout: 1 });
  return [
    verdict('latency.direct', 'on one connection', spread(one)),
    verdict('latency.pool', `through a pool of ${width}, ${width} at a time`, spread(many)),
  ];
}
