/**
 * `npm run bench -- --growth`: how cost grows with the work. One database grows step by step
 * (bench/growth-plan.ts): the accounts table 1e3 -> 1e5 -> 1e6 rows, then, at that size, the
 * idempotency table 0 -> 1e5 -> 1e6 keys, some of them expiring while the runs go on so Keel's
 * sweep (src/ledger/idempotency.ts, in every worker as in production) has work. At each step
 * Keel and the bare baseline take the default bench's mixed load (bench/load.ts: reads + keyed
 * transfers over the whole accounts range) through compare.ts's measurement: 2xx/s, p50, p99,
 * CPU per answer of the app and of Postgres from /proc, and the tables' rows and MB.
 */
import { freePort, psql } from './fixtures';
import { BALANCE, createBenchDatabase } from './database';
import { measure } from './compare';
import { CONNECTIONS } from './load';
import * as out from './output';
import { createSnapshot } from './snapshot';
import { createBaseline, createKeel, POOL_MAX, WORKERS, type Keel, type Target } from './targets';
import {
  CLIENT_KEYS_OVER_H,
  EXPIRY_SPAN_S,
  GENERATED_EVERY,
  growthRatioRows,
  growthSection,
  growthRows,
  growthSteps,
  isDefaultGrowth,
  SWEEP_INTERVAL_MS,
  type GrowthRun,
  type Step,
  type TableSize,
} from './growth-plan';
import type { Log, RunDeps } from './types';

const MB = 1024 * 1024;

/** Grows the accounts table, then the idempotency table, to `step`; returns the accounts' ids. */
async function grow(url: string, step: Step, log: Log): Promise<{ lo: number; hi: number }> {
  const started = Date.now();
  const [have] = await psql<{ accounts: number; keys: number }>(
    url,
    `select (select count(*) from accounts)::int as accounts,
            (select count(*) from idempotency_keys)::int as keys`,
  );
  if (!have) throw new Error('no counts');
  if (step.accounts > have.accounts) {
    await psql(
      url,
      `insert into accounts (name, balance, opening_balance, creation_key)
       select 'bench-' || g, ${BALANCE}, ${BALANCE}, gen_random_uuid()
       from generate_series(${have.accounts + 1}, ${step.accounts}) g`,
    );
    await psql(url, 'analyze accounts');
  }
  if (step.keys > have.keys) {
    // Rows as keel_transfer_v2 stores them: a 201 and its transfer's JSON, the request's hash.
    await psql(
      url,
      `insert into idempotency_keys (key, request_hash, status, body, owner, created_at)
       select (case when gen then 'gen:' else 'client:' end) || gen_random_uuid(),
              encode(sha256(convert_to('seed-' || g, 'UTF8')), 'hex'),
              201,
              json_build_object('id', g, 'from', 1 + g % 1000, 'to', 1001 + g % 1000,
                'amount', 1 + g % 100, 'created_at',
                to_char(made at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))::text,
              gen_random_uuid(),
              made
       from (select g, gen,
                    case when gen
                      then now() - interval '10 minutes'
                           + random() * interval '${EXPIRY_SPAN_S} seconds'
                      else now() - random() * interval '${CLIENT_KEYS_OVER_H} hours' end as made
             from (select g, g % ${GENERATED_EVERY} = 0 as gen
                   from generate_series(1, ${step.keys - have.keys}) g) s) k`,
    );
    await psql(url, 'analyze idempotency_keys');
  }
  const [range] = await psql<{ lo: number; hi: number }>(
    url,
    'select min(id)::int as lo, max(id)::int as hi from accounts',
  );
  // The sweep's work: generated keys already past their 10 min, and those still to pass it.
  const [gen] = await psql<{ expired: number; pending: number }>(
    url,
    `select count(*) filter (where created_at < now() - interval '10 minutes')::int as expired,
            count(*) filter (where created_at >= now() - interval '10 minutes')::int as pending
     from idempotency_keys where key like 'gen:%'`,
  );
  if (!range || !gen) throw new Error('no accounts');
  log(
    `grown to ${step.accounts} accounts, ${step.keys} seeded keys ` +
      `(${((Date.now() - started) / 1000).toFixed(1)} s); generated keys: ${gen.expired} ` +
      `expired, ${gen.pending} to expire`,
  );
  return range;
}

/** Both tables' rows and MB, and the rows deleted from idempotency_keys so far. */
async function sizes(url: string) {
  const [row] = await psql<{
    accounts: number;
    accounts_bytes: number;
    keys: number;
    keys_bytes: number;
    deleted: number;
  }>(
    url,
    `select (select count(*) from accounts)::int as accounts,
            pg_total_relation_size('accounts')::float8 as accounts_bytes,
            (select count(*) from idempotency_keys)::int as keys,
            pg_total_relation_size('idempotency_keys')::float8 as keys_bytes,
            (select n_tup_del from pg_stat_user_tables
             where relname = 'idempotency_keys')::float8 as deleted`,
  );
  if (!row) throw new Error('no sizes');
  const size = (rows: number, bytes: number): TableSize => ({ rows, mb: bytes / MB });
  return {
    accounts: size(row.accounts, row.accounts_bytes),
    keys: size(row.keys, row.keys_bytes),
    deleted: row.deleted,
  };
}

async function runGrowth({ opts, cleanup, log }: RunDeps) {
  const g = opts.growth;
  const started = new Date();
  const steps = growthSteps(g.maxRows);
  const app = createSnapshot({ cleanup });
  const db = await createBenchDatabase({ app, cleanup, log, accounts: steps[0]?.accounts });
  const baseline = createBaseline({
    databaseUrl: db.url,
    port: await freePort(),
    cleanup,
    probePath: `/api/accounts/${db.accounts.lo}`,
  });
  const keelEnv = { KEY_SWEEP_INTERVAL_MS: String(SWEEP_INTERVAL_MS), ...opts.keelEnv };
  // Every Keel measurement gets its own PM2 daemon (as in bench/reads.ts), killed after it.
  const makers: (() => Promise<Target>)[] = [
    async () =>
      createKeel({ app, databaseUrl: db.url, port: await freePort(), cleanup, env: keelEnv }),
    () => Promise.resolve(baseline),
  ];
  const timing = { ...opts, warmupS: g.warmupS, measureS: g.measureS };
  const runs: GrowthRun[] = [];
  const raw: unknown[] = [];
  const partial = `growth-${out.timestamp(started)}.partial.json`;
  for (const [i, step] of steps.entries()) {
    const accounts = await grow(db.url, step, log);
    // The load picks accounts over the whole grown range.
    const at = { ...db, accounts };
    for (let pair = 1; pair <= g.pairs; pair++) {
      for (const make of makers) {
        const target = await make();
        try {
          const before = await sizes(db.url);
          const run = await measure({ target, db: at, pair: i + 1, opts: timing, cleanup, log });
          const after = await sizes(db.url);
          const s = run.summary;
          runs.push({
            step: i + 1,
            pair,
            target: target.name,
            accounts: before.accounts,
            keys: before.keys,
            okPerS: s.opsPerS,
            latencyMs: { p50: s.latencyMs.p50, p99: s.latencyMs.p99 },
            readP99Ms: s.readsMs.p99,
            transferP99Ms: s.transfersMs.p99,
            errors: s.non2xx + s.socketErrors,
            appMs: run.cpu.msPerOp + (run.cpu.daemonMsPerOp ?? 0),
            postgresMs: run.cpu.postgresMsPerOp,
            swept: after.deleted - before.deleted,
          });
          raw.push({ step: i + 1, ...step, ...run });
          out.writeResult(partial, runs);
        } catch (err) {
          // One target that did not come up (a loaded box) costs its row, not the whole run.
          log(`[${target.name} step ${i + 1}] not measured: ${(err as Error).message ?? err}`);
        } finally {
          if ('kill' in target) await (target as Keel).kill();
        }
      }
    }
  }
  const counts = await db.counts();
  const m = out.machine();
  const result = {
    kind: 'growth',
    startedAt: started.toISOString(),
    config: {
      load: `bench/load.ts: ${CONNECTIONS} clients, 50 % reads, 50 % keyed transfers, all accounts`,
      warmupS: g.warmupS,
      measureS: g.measureS,
      pairs: g.pairs,
      maxRows: g.maxRows,
      workers: WORKERS,
      poolMaxPerWorker: POOL_MAX,
      keelEnv,
      seededKeys: {
        generatedShare: 1 / GENERATED_EVERY,
        generatedExpireOverS: EXPIRY_SPAN_S,
        clientKeysCreatedOverH: CLIENT_KEYS_OVER_H,
      },
    },
    steps,
    runs,
    raw,
    database: counts,
    machine: m,
    postgres: db.serverVersion,
    distFingerprint: app.fingerprint,
    durationS: (Date.now() - started.getTime()) / 1000,
  };
  const file = out.writeResult(`growth-${out.timestamp(started)}.json`, result);
  const table = growthRows(runs);
  const ratios = growthRatioRows(runs);
  process.stdout.write(
    `\n${out.renderText(table)}\n\n${out.renderText(ratios, 2)}\n\n` +
      `${out.ledgerCheck(counts)}\n` +
      `machine: ${out.machineLine(m, db.serverVersion, app.fingerprint)}\nresults: ${file}\n`,
  );
  if (!isDefaultGrowth(g, opts.keelEnv)) {
    log('non-default settings: bench/LATEST.md left as it is');
    return result;
  }
  const latest = out.updateLatest(
    'growth',
    growthSection({
      startedAt: started,
      steps,
      opts: g,
      table,
      ratios,
      ledger: out.ledgerCheck(counts),
      machine: out.machineLine(m, db.serverVersion, app.fingerprint),
    }),
  );
  log(`summary: ${latest}`);
  return result;
}

export { runGrowth };
