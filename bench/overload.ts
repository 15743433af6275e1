/**
 * `npm run bench -- --overload`: keyless transfers between a few hot accounts, Keel under PM2
 * (2 workers) with a small pool and a short budget. First its capacity (as many clients as there
 * are connections), then multiples of that. For each step: 2xx a second against capacity
 * (goodput), latencies, how many answers were 503 and how many of those transfers are in the
 * database anyway (must be 0), why units were refused, and how long Keel's backends stayed busy
 * after the load stopped.
 *
 * The shape of the overload is a parameter (see OVERLOAD_ARGS): pool, budget vs request
 * deadline, hot accounts, multiples. `--against DIR` measures another checkout's dist/ in the
 * same run, alternating A B A B (`--rounds`), each round with its own capacity step: on a shared
 * machine only numbers taken side by side compare.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import * as out from './output';
import { createBenchDatabase } from './database';
import { measureStep, type StepResult } from './overload-step';
import { createSnapshot } from './snapshot';
import { createKeel, WORKERS } from './targets';
import { freePort } from './fixtures';
import type { OverloadOpts, RunDeps } from './types';

/** The overload's own flags (parsed in run.ts with the rest). */
export const OVERLOAD_ARGS = {
  pool: { type: 'string', default: '2' },
  'budget-ms': { type: 'string', default: '300' },
  'deadline-ms': { type: 'string', default: '300' },
  hot: { type: 'string', default: '2' },
  x: { type: 'string', default: '10,50' },
  rounds: { type: 'string', default: '1' },
  against: { type: 'string' },
} as const;

const DEFAULT_OVERLOAD: OverloadOpts = {
  pool: 2,
  budgetMs: 300,
  deadlineMs: 300,
  hot: 2,
  multiples: [10, 50],
  rounds: 1,
  against: null,
};

type Flags = Record<string, string | boolean | undefined | string[]>;

/** The integer flag `--name`, refused with its range when outside lo..hi. */
export function intFlag(values: Flags, name: string, lo: number, hi: number): number {
  const v = Number(values[name]);
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw new Error(
      `--${name} must be an integer from ${lo} to ${hi}, not ${String(values[name])}`,
    );
  }
  return v;
}

export function overloadOpts(values: Flags) {
  const int = (name: string, lo: number, hi: number) => intFlag(values, name, lo, hi);
  const multiples = String(values.x)
    .split(',')
    .map((m) => Number(m));
  if (multiples.some((m) => !Number.isInteger(m) || m < 1 || m > 200)) {
    throw new Error(`--x takes multiples from 1 to 200, comma-separated, not ${values.x}`);
  }
  const against = values.against === undefined ? null : path.resolve(String(values.against));
  return {
    pool: int('pool', 1, 50),
    budgetMs: int('budget-ms', 0, 600000),
    deadlineMs: int('deadline-ms', 100, 600000),
    hot: int('hot', 2, 1000),
    multiples,
    rounds: int('rounds', 1, 20),
    against,
  } satisfies OverloadOpts;
}

const isDefault = (o: OverloadOpts) =>
  (Object.keys(DEFAULT_OVERLOAD) as (keyof OverloadOpts)[]).every(
    (k) => String(o[k]) === String(DEFAULT_OVERLOAD[k]),
  );

interface Row extends StepResult {
  target: string;
  round: number;
  step: string;
  goodput: number;
}

const pct = (x: number) => `${(x * 100).toFixed(0)} %`;
const spread = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s[Math.floor((s.length - 1) / 2)]!;
  return s.length === 1 ? pct(mid) : `${pct(mid)} (${pct(s[0]!)}–${pct(s[s.length - 1]!)})`;
};

async function runOverload({ opts, cleanup, log }: RunDeps) {
  const o = opts.overload;
  const started = new Date();
  const keelEnv = {
    DB_POOL_MAX: String(o.pool),
    REQUEST_TIMEOUT_MS: String(o.deadlineMs),
    DB_RETRY_BUDGET_MS: String(o.budgetMs),
    ...opts.keelEnv,
  };
  const apps = [{ name: 'this', app: createSnapshot({ cleanup }) }];
  if (o.against) apps.push({ name: 'against', app: createSnapshot({ cleanup, from: o.against }) });
  const db = await createBenchDatabase({ app: apps[0]!.app, cleanup, log });
  // The idempotency table must stay bounded (generated keys expire in minutes, client keys in 48 h).
  const keysBefore = (await db.counts()).keys;
  const saturating = WORKERS * o.pool;
  const steps = [
    { label: 'capacity', clients: saturating },
    ...o.multiples.map((m) => ({ label: `${m}x`, clients: m * saturating })),
  ];
  const rows: Row[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    // A B, then B A: neither target always runs on the warmer (or busier) machine.
    const order = round % 2 === 1 ? apps : [...apps].reverse();
    for (const { name, app } of order) {
      const port = await freePort();
      const keel = createKeel({ app, databaseUrl: db.url, port, cleanup, env: keelEnv, name });
      log(`[${name} round ${round}] starting keel (${app.fingerprint})`);
      await keel.start();
      let capacity: number | null = null;
      for (const step of steps) {
        log(
          `[${name} round ${round} ${step.label}] ${step.clients} clients for ${opts.measureS} s`,
        );
        const r = await measureStep({
          port,
          dbUrl: db.url,
          firstAccount: db.accounts.lo,
          hot: o.hot,
          clients: step.clients,
          measureS: opts.measureS,
        });
        capacity ??= r.okPerS;
        const row = { target: name, round, step: step.label, goodput: r.okPerS / capacity, ...r };
        log(JSON.stringify({ ...row, okPerS: Math.round(r.okPerS) }));
        rows.push(row);
        await sleep(1000);
      }
      await keel.stop();
      await keel.kill();
    }
  }
  const counts = await db.counts();
  const file = out.writeResult(`overload-${out.timestamp(started)}.json`, {
    kind: 'overload',
    startedAt: started.toISOString(),
    machine: out.machine(),
    targets: apps.map((a) => ({ name: a.name, fingerprint: a.app.fingerprint })),
    against: o.against,
    overload: o,
    keelEnv,
    rows,
    database: { ...counts, keysBefore },
  });
  const summary = [
    '| target | step | clients | pool | budget | deadline | hot | 2xx/s (median) | goodput vs capacity: median (min–max) | 503 applied |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...apps.flatMap(({ name }) =>
      steps.map((s) => {
        const rs = rows.filter((r) => r.target === name && r.step === s.label);
        const ok = rs.map((r) => r.okPerS).sort((a, b) => a - b);
        return (
          `| ${name} | ${s.label} | ${s.clients} | ${o.pool} | ${o.budgetMs} ms | ${o.deadlineMs} ms | ${o.hot} | ` +
          `${Math.round(ok[Math.floor((ok.length - 1) / 2)]!)} | ${spread(rs.map((r) => r.goodput))} | ` +
          `${rs.reduce((n, r) => n + r.refusedApplied, 0)} of ${rs.reduce((n, r) => n + r.refused, 0)} |`
        );
      }),
    ),
  ].join('\n');
  process.stdout.write(
    `${summary}\n${out.ledgerCheck(counts)}\n` +
      `idempotency_keys rows: ${keysBefore} before, ${counts.keys} after\nresults: ${file}\n`,
  );
  if (Object.keys(opts.keelEnv).length > 0 || !isDefault(o)) return;
  out.updateLatest(
    'overload',
    [
      `## Overload (\`npm run bench -- --overload\`, ${started.toISOString().slice(0, 16)}Z)`,
      '',
      `Keel under PM2 (2 workers, \`DB_POOL_MAX=2\`, \`REQUEST_TIMEOUT_MS=300\`, \`DB_RETRY_BUDGET_MS=300\`), ` +
        `keyless \`POST /api/transfers\` between two hot accounts, closed-loop clients, ${opts.measureS} s a step. ` +
        '"503 applied" counts the transfers answered `503 database_unavailable` whose generated key is in the database (must be 0). ' +
        'Other shapes of overload: `--pool`, `--budget-ms`, `--deadline-ms`, `--hot`, `--x` (docs/design/database-path.md).',
      '',
      'Units refused: by the gate at the door (`overload`: even served next its wait would pass its budget; `full`: the wait was full), ' +
        'at their turn or in the wait (`deadline`: the request deadline fired), or abandoned running at the deadline (`timeout`).',
      '',
      '| step | clients | 2xx/s | goodput vs capacity | p99 (all) | p99 (2xx) | 503 unavailable | refused: overload / full / deadline / timeout | 503 applied | 503 outcome_unknown | Keel backends busy after stop |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...rows.map(
        (r) =>
          `| ${r.step} | ${r.clients} | ${Math.round(r.okPerS)} | ${pct(r.goodput)} | ${r.all.p99} ms | ${r.ok.p99} ms | ` +
          `${r.refused} | ${r.why.overload} / ${r.why.full} / ${r.why.deadline} / ${r.why.timeout} | ${r.refusedApplied} | ${r.unknown} | ${r.busyAfterStop === 0 ? `idle after ${r.quietAfterMs} ms` : `${r.busyAfterStop} still busy`} |`,
      ),
      '',
      `Machine: ${out.machineLine(out.machine(), db.serverVersion, apps[0]!.app.fingerprint)}.`,
    ].join('\n'),
  );
}

export { runOverload };
