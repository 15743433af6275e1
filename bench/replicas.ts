/**
 * `npm run bench -- --replicas`: how far reads scale out across standbys on this machine. One
 * primary and two hot standbys (test/support/replication, the suite's binaries) run throughout;
 * one Keel worker (dist/main.js) reads from 0, 1 or 2 of them (DATABASE_READ_URL), in turns
 * (0 1 2 0 1 2 ... for --pairs rounds), under the same closed-loop load: 32 keep-alive clients,
 * 90 % `GET /api/accounts/:id` presenting the client's latest Consistency-Token (read-your-writes
 * clients), 10 % keyed transfers. Per run: 2xx/s, p50/p99, non-2xx, and where the reads ran
 * (keel_db_reads_total by target). Table on stdout and in bench/LATEST.md.
 *
 * The standbys replay the same WAL in every run (also when Keel reads none of them), so the runs
 * differ only in where Keel reads.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool, type Dispatcher } from 'undici';
import { seedAccounts } from '../test/support/ledger';
import { psql } from '../test/support/postgres';
import { cloneStandby, startReplicationPair } from '../test/support/replication';
import { until } from '../test/support/wait';
import { readyz, startWorker } from './failover';
import { isDefaultRun, machine, machineLine, timestamp, updateLatest, writeResult } from './output';
import { latencyFigures } from './stats';
import type { RunDeps } from './types';

const DB = 'keel_bench_reads';
const CLIENTS = 32;
const READ_SHARE = 0.9;
const ACCOUNTS = 200;
const NOTE = [
  'Why reads do not scale out here: the primary, both standbys, Keel and the load generator share',
  'the same two cores, so a read moved to a standby takes CPU from the same pool (and each standby',
  'read adds a position query for its token); the standbys replay every write in every run.',
  'Fallbacks are token reads whose write had not reached a standby within `DB_READ_WAIT_MS` (200 ms):',
  'the test cluster commits asynchronously (`synchronous_commit=off`, WAL flushed by the WAL writer',
  'every 200 ms), so a fresh commit reaches a standby up to 200 ms late. Compare runs of the same',
  'round only: on a shared box the same configuration varies several-fold between rounds.',
].join(' ');

interface Row {
  round: number;
  standbys: number;
  opsPerS: number;
  readsPerS: number;
  p50: number | null;
  p99: number | null;
  p99Read: number | null;
  non2xx: number;
  /** The non-2xx answers by status (0: no answer). */
  statuses: Record<string, number>;
  /** keel_db_reads_total by target over the measured window. */
  targets: Record<string, number>;
}

async function readTargets(base: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^keel_db_reads_total\{[^}]*target="(\w+)"[^}]*\} (\S+)$/gm))
    out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
  return out;
}

/** The closed loop for `ms` after `warmupMs`; figures cover the measured part only. */
async function measure(base: string, accounts: number[], warmupMs: number, ms: number) {
  const pool = new Pool(base, { connections: CLIENTS, pipelining: 1, keepAliveTimeout: 60000 });
  const lat: number[] = [];
  const readLat: number[] = [];
  let ok = 0;
  let reads = 0;
  let non2xx = 0;
  const statuses: Record<string, number> = {};
  let measuring = false;
  let stopped = false;
  let seq = 0;
  // Keys unique across runs: a key reused with another body would be a 422.
  const run = `reads-${process.pid}-${Date.now()}`;
  const pick = () => accounts[Math.floor(Math.random() * accounts.length)]!;
  const client = async (n: number) => {
    let token: string | null = null;
    while (!stopped) {
      const read = Math.random() < READ_SHARE;
      const from = pick();
      let to = pick();
      while (to === from) to = pick();
      const t = performance.now();
      let status = 0;
      try {
        const res: Dispatcher.ResponseData = await pool.request(
          read
            ? {
                method: 'GET',
                path: `/api/accounts/${from}`,
                headers: token ? { 'consistency-token': token } : {},
              }
            : {
                method: 'POST',
                path: '/api/transfers',
                headers: {
                  'content-type': 'application/json',
                  'idempotency-key': `${run}-${n}-${(seq += 1)}`,
                },
                body: JSON.stringify({ from, to, amount: 1 }),
              },
        );
        status = res.statusCode;
        const got: unknown = res.headers['consistency-token'];
        if (typeof got === 'string') token = got;
        await res.body.dump();
      } catch {
        await sleep(20);
      }
      if (!measuring) continue;
      const took = performance.now() - t;
      lat.push(took);
      if (read) readLat.push(took);
      if (status >= 200 && status < 300) {
        ok += 1;
        if (read) reads += 1;
      } else {
        non2xx += 1;
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
    }
  };
  const loops = Array.from({ length: CLIENTS }, (_, i) => client(i));
  await sleep(warmupMs);
  const before = await readTargets(base);
  measuring = true;
  const t0 = performance.now();
  await sleep(ms);
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  const after = await readTargets(base);
  stopped = true;
  await Promise.all(loops);
  await pool.close();
  const all = latencyFigures(lat);
  const targets = Object.fromEntries(
    Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]),
  );
  return {
    opsPerS: ok / seconds,
    readsPerS: reads / seconds,
    p50: all.p50,
    p99: all.p99,
    p99Read: latencyFigures(readLat).p99,
    non2xx,
    statuses,
    targets,
  };
}

export async function runReplicas(deps: RunDeps): Promise<Row[]> {
  const { cleanup, log, opts } = deps;
  log('starting a primary and two hot standbys');
  const pair = await startReplicationPair({ database: DB });
  const dropPair = cleanup.add('replication pair', () => pair.destroy());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-bench-standby-'));
  const second = await cloneStandby(dir, pair.link.port);
  const dropSecond = cleanup.add('second standby', async () => {
    await second.pg.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const standbys = [pair.standby.url(DB), second.pg.url(DB)];
  const rows: Row[] = [];
  const [version] = await psql<{ server_version: string }>(
    pair.primary.url(),
    'show server_version',
  );
  let ids: number[] | null = null;
  try {
    for (let round = 1; round <= opts.pairs; round++) {
      for (const n of [0, 1, 2]) {
        const env: Record<string, string> = { WEB_CONCURRENCY: '1' };
        if (n > 0) {
          const hosts = standbys.slice(0, n).map((u) => new URL(u).host);
          const u = new URL(standbys[0]!);
          env.DATABASE_READ_URL = `postgres://${u.username}:${u.password}@${hosts.join(',')}/${DB}`;
        }
        const { base, child } = await startWorker(pair.primary.url(DB), env);
        const exited = new Promise((r) => child.once('exit', r));
        const stop = cleanup.add(`worker (${n} standbys)`, async () => {
          if (child.exitCode === null) child.kill('SIGTERM');
          await exited;
        });
        try {
          await until('the worker ready', async () => (await readyz(base)) === 200, 30000);
          ids ??= await seedAccounts(base, ACCOUNTS, 1_000_000);
          log(`round ${round}: ${n} standby(s), ${opts.warmupS} s warm-up + ${opts.measureS} s`);
          const r = await measure(base, ids, opts.warmupS * 1000, opts.measureS * 1000);
          rows.push({ round, standbys: n, ...r });
          log(
            `  ${r.opsPerS.toFixed(0)} 2xx/s, p99 ${r.p99?.toFixed(1)} ms, non-2xx ${JSON.stringify(r.statuses)}, reads ${JSON.stringify(r.targets)}`,
          );
        } finally {
          await stop();
        }
      }
    }
  } finally {
    await dropSecond();
    await dropPair();
  }
  const f1 = (v: number | null) => (v === null ? '-' : v.toFixed(1));
  const table = [
    '| round | standbys read | 2xx/s | reads/s | p50 ms | p99 ms | read p99 ms | non-2xx | reads on standby / primary / fallback |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows.map(
      (r) =>
        `| ${r.round} | ${r.standbys} | ${r.opsPerS.toFixed(0)} | ${r.readsPerS.toFixed(0)} | ${f1(r.p50)} | ${f1(r.p99)} | ${f1(r.p99Read)} | ${r.non2xx} | ${r.targets.standby ?? 0} / ${r.targets.primary ?? 0} / ${r.targets.fallback ?? 0} |`,
    ),
  ].join('\n');
  process.stdout.write(`\n${table}\n\n`);
  const stamp = timestamp();
  writeResult(`replicas-${stamp}.json`, rows);
  if (!isDefaultRun(opts)) {
    log('non-default settings: bench/LATEST.md left as it is');
    return rows;
  }
  updateLatest(
    'replicas',
    [
      `## Reads across standbys (\`npm run bench -- --replicas\`, ${new Date().toISOString().slice(0, 16)}Z)`,
      '',
      `${CLIENTS} keep-alive clients in a closed loop, ${READ_SHARE * 100} % reads presenting the client's latest Consistency-Token, ${100 - READ_SHARE * 100} % keyed transfers; ${opts.warmupS} s warm-up + ${opts.measureS} s measured per run; one Keel worker reading from 0, 1 or 2 of the two hot standbys that replay the primary's WAL in every run.`,
      '',
      table,
      '',
      NOTE,
      '',
      `Machine: ${machineLine(machine(), String(version?.server_version ?? '?'))}.`,
    ].join('\n'),
  );
  return rows;
}
