/**
 * Several hosts in any order: `postgres://…@standby,primary/db`. A PostgreSQL >= 14 hot standby
 * reports default_transaction_read_only=off, which unpatched postgres.js 3.4.9 took for
 * read-write: migrations landed on the standby and Keel never became ready. Here: the worker
 * becomes ready with every connection on the primary; when the primary crashes, /readyz
 * answers 503 and a worker starting then says the standby is a standby (not "not reachable");
 * after the promote the writes move to the new primary, with 0 failed logical operations under
 * a keyed, retrying load and every 2xx transfer there (synchronous replication).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { checkInvariants, seedAccounts } from '../support/ledger';
import { firstOkAfter, startFailoverLoad } from '../support/failover';
import { ROOT } from '../support/paths';
import { ensureBuilt } from '../support/pm2';
import { psql } from '../support/postgres';
import { startReplicationPair, type ReplicationPair } from '../support/replication';
import { until } from '../support/wait';
import { startTestWorker, type TestWorker } from '../support/worker';

const DB = 'keel_ha';
let pair: ReplicationPair;
let w: TestWorker;
let child: ChildProcess | undefined;

beforeAll(async () => {
  ensureBuilt();
  pair = await startReplicationPair({ database: DB, synchronous: true });
});

afterAll(async () => {
  try {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    await w?.stop();
  } finally {
    await pair?.destroy();
  }
});

/** The standby first, then the primary: the order a failover leaves a static URL in. */
function standbyFirstUrl(): string {
  const u = new URL(pair.primary.url(DB));
  return `postgres://${u.username}:${u.password}@127.0.0.1:${pair.standby.port},127.0.0.1:${pair.primary.port}/${DB}`;
}

const keelSessions = async (url: string) =>
  Number(
    (
      await psql<{ n: string }>(
        url,
        `select count(*)::text as n from pg_stat_activity where application_name like 'keel:%'`,
      )
    )[0]!.n,
  );

const readyz = async (base: string) =>
  (await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(5000) })).status;

test('standby listed first: the worker becomes ready and every connection is on the primary', async () => {
  w = await startTestWorker(standbyFirstUrl());
  const accounts = await seedAccounts(w.base, 4, 100);
  expect(accounts).toHaveLength(4);
  expect(await readyz(w.base)).toBe(200);
  expect(await keelSessions(pair.primary.url())).toBeGreaterThan(0);
  expect(await keelSessions(pair.standby.url())).toBe(0);
  const [migrated] = await psql<{ n: string }>(
    pair.primary.url(DB),
    `select count(*)::text as n from keel_migrations`,
  );
  expect(Number(migrated!.n)).toBeGreaterThan(0);
});

test('the primary crashes: 503, a starting worker names the standby; after the promote writes move, 0 failed operations', async () => {
  const accounts = (
    await psql<{ id: number }>(pair.primary.url(DB), 'select id from accounts order by id')
  ).map((r) => Number(r.id));
  const load = startFailoverLoad({ base: w.base, accounts, concurrency: 4 });
  try {
    await new Promise((r) => setTimeout(r, 1000));
    await pair.primary.stop('immediate');
    await until('/readyz 503 while no primary answers', async () => (await readyz(w.base)) === 503);

    // A worker starting now: not ready, and it says what each host is.
    const lines: Array<Record<string, unknown>> = [];
    child = spawn(process.execPath, [path.join(ROOT, 'dist', 'main.js')], {
      env: {
        PATH: process.env.PATH,
        DATABASE_URL: standbyFirstUrl(),
        HOST: '127.0.0.1',
        PORT: '0',
        READY_WAIT_MS: '200',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let buf = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('{')) lines.push(JSON.parse(line) as Record<string, unknown>);
      }
    });
    const standbyAddr = `127.0.0.1:${pair.standby.port}`;
    const primaryAddr = `127.0.0.1:${pair.primary.port}`;
    await until(
      'the starting worker naming the standby',
      () => lines.some((l) => l.host === standbyAddr && l.role === 'standby'),
      20000,
    );
    expect(lines.find((l) => l.host === standbyAddr)!.msg).toBe(
      'database host is a standby, waiting for a primary',
    );
    expect(lines.some((l) => l.host === primaryAddr && l.role === 'unreachable')).toBe(true);
    expect(lines.some((l) => l.host === standbyAddr && l.role === 'unreachable')).toBe(false);
    // It listens (not ready) once READY_WAIT_MS has passed: that line may follow the hosts' lines.
    await until(
      'the starting worker listening',
      () => lines.some((l) => l.msg === 'listening'),
      20000,
    );
    const listening = lines.find((l) => l.msg === 'listening');
    expect(listening).toBeDefined();
    const childBase = `http://127.0.0.1:${listening!.port as number}`;
    expect(await readyz(childBase)).toBe(503);

    await pair.standby.promote();
    const promotedAt = Date.now();
    await until(
      '/readyz 200 on the new primary',
      async () => (await readyz(w.base)) === 200,
      30000,
    );
    await until('the started worker ready', async () => (await readyz(childBase)) === 200, 30000);
    await until(
      'a 2xx transfer after the promote',
      () => load.live().okAt.some((t) => t >= promotedAt),
      30000,
    );
    const result = await load.stop();
    console.log('standby-first crash failover (sync)', {
      ops: result.ops,
      errorAttempts: result.errorAttempts,
      firstOkAfterPromoteMs: firstOkAfter(result, promotedAt),
      byStatus: result.byStatus,
    });
    expect(result.failedOps).toBe(0);
    expect(await keelSessions(pair.standby.url())).toBeGreaterThan(0);
    await checkInvariants(pair.standby.url(DB), result);
  } finally {
    await load.stop();
  }
});
