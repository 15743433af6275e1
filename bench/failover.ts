/**
 * `npm run bench -- --failover`: a switchover and a crash failover against a real streaming
 * standby (test/support/replication: a primary and a standby from the suite's Postgres binaries),
 * behind one moving address (test/support/moving-proxy, what HAProxy does on Railway), under the
 * failover tests' careful client load (test/support/failover: every operation retried with its
 * key on a 503 or a network error). One Keel worker, dist/main.js as deployed, per scenario on a
 * fresh pair (a promote spends the standby).
 *
 * Per scenario: logical operations, failed ones, error attempts (5xx or no answer, retried), 503
 * answers among them, and the first 2xx transfer after the promote.
 *   switchover  the address points nowhere, the primary stops (fast), the standby is promoted,
 *               the address points at it. Asynchronous replication (Railway's default).
 *   crash       the primary is killed (immediate), then the same. Synchronous replication.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { firstOkAfter, startFailoverLoad, type FailoverLoad } from '../test/support/failover-load';
import { seedAccounts } from '../test/support/ledger';
import { createMovingProxy } from '../test/support/moving-proxy';
import { startReplicationPair } from '../test/support/replication';
import { until } from '../test/support/wait';
import { ROOT } from './fixtures';
import type { RunDeps } from './types';

const DB = 'keel_bench_ha';
const CONCURRENCY = 6;
const BEFORE_MS = 2000;
const AFTER_MS = 3000;

interface Row {
  scenario: 'switchover' | 'crash';
  replication: 'async' | 'sync';
  ops: number;
  failedOps: number;
  errorAttempts: number;
  answers503: number;
  firstOkAfterPromoteMs: number | null;
  readyz503: boolean;
}

/** dist/main.js on `url`; resolves with its base URL once it logs `listening`. */
export function startWorker(
  url: string,
  env: Record<string, string> = {},
): Promise<{ base: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'main.js')], {
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: url,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(
      () => reject(new Error('the worker did not listen within 30 s')),
      30000,
    );
    child.once('exit', (code) => reject(new Error(`the worker exited (${code})`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      const m = /"msg":"listening"[^\n]*"port":(\d+)/.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve({ base: `http://127.0.0.1:${m[1]}`, child });
      }
      if (buf.length > 1 << 16) buf = buf.slice(-4096);
    });
  });
}

export async function readyz(base: string): Promise<number> {
  try {
    return (await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(2000) })).status;
  } catch {
    return 0;
  }
}

async function scenario(kind: Row['scenario'], deps: RunDeps): Promise<Row> {
  const { cleanup, log } = deps;
  const synchronous = kind === 'crash';
  log(
    `${kind}: starting a primary and ${synchronous ? 'a synchronous' : 'an asynchronous'} standby`,
  );
  const pair = await startReplicationPair({ database: DB, synchronous });
  const dropPair = cleanup.add(`${kind}: replication pair`, () => pair.destroy());
  const proxy = await createMovingProxy(pair.primary.port);
  const closeProxy = cleanup.add(`${kind}: moving proxy`, () => proxy.close());
  const { base, child } = await startWorker(proxy.url(pair.primary.url(DB)));
  const exited = new Promise((r) => child.once('exit', r));
  const stopWorker = cleanup.add(`${kind}: worker`, async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  });
  let load: FailoverLoad | undefined;
  try {
    await until('the worker ready', async () => (await readyz(base)) === 200, 30000);
    const accounts = await seedAccounts(base, 8, 1000);
    load = startFailoverLoad({ base, accounts, concurrency: CONCURRENCY });
    await sleep(BEFORE_MS);
    log(`${kind}: ${kind === 'crash' ? 'killing' : 'stopping'} the primary`);
    proxy.point(null);
    await pair.primary.stop(kind === 'crash' ? 'immediate' : 'fast');
    let readyz503 = false;
    await until('/readyz 503', async () => (readyz503 = (await readyz(base)) === 503), 10000).catch(
      () => undefined,
    );
    await pair.standby.promote();
    const promotedAt = Date.now();
    proxy.point(pair.standby.port);
    await until('/readyz 200 on the new primary', async () => (await readyz(base)) === 200, 30000);
    await sleep(AFTER_MS);
    const r = await load.stop();
    return {
      scenario: kind,
      replication: synchronous ? 'sync' : 'async',
      ops: r.ops,
      failedOps: r.failedOps,
      errorAttempts: r.errorAttempts,
      answers503: r.byStatus['503'] ?? 0,
      firstOkAfterPromoteMs: firstOkAfter(r, promotedAt),
      readyz503,
    };
  } finally {
    await load?.stop();
    await stopWorker();
    await closeProxy();
    await dropPair();
  }
}

export async function runFailover(deps: RunDeps): Promise<Row[]> {
  const rows: Row[] = [];
  for (const kind of ['switchover', 'crash'] as const) rows.push(await scenario(kind, deps));
  const table = [
    '| scenario | replication | ops | failed ops | error attempts | 503s | /readyz 503 in the gap | first 2xx after the promote |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${r.replication} | ${r.ops} | ${r.failedOps} | ${r.errorAttempts} | ${r.answers503} | ${r.readyz503 ? 'yes' : 'no'} | ${r.firstOkAfterPromoteMs === null ? 'none' : `${r.firstOkAfterPromoteMs} ms`} |`,
    ),
  ];
  process.stdout.write(`\n${table.join('\n')}\n\n`);
  return rows;
}
