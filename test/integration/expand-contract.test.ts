/**
 * Expand / contract (issue 27, docs/migrations.md) on Keel's own schema: accounts.name becomes
 * accounts.display_name with no failed request, under load, two releases side by side.
 *
 * - Release 1: the checkout as it is (migrations 0001-0005; its code reads and writes `name`).
 * - Release 2: the expand file (./support/expand-contract/0006: `display_name` kept equal to
 *   `name` by a trigger) and code that reads and writes `display_name` (a copy of dist/ with
 *   that change, ./support/release.ts).
 * - The contract file (0007, `-- keel:contract 0006_...`): drops `name`; only the migrate command
 *   applies it, and only while no worker online lacks 0006 (PM2's `schema` metric).
 *
 * Steps: `pm2 reload` of one worker into release 2 (its boot migrates the expand); the two
 * releases serve side by side and the contract is refused (exit 77, the old worker named);
 * `pm2 reload` of the other; the contract is applied. Reads, transfers and account creations run
 * throughout: 0 failed, every name read back as written, the ledger's invariants hold.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { checkInvariants, seedAccounts } from '../support/ledger';
import { workerLogs } from '../support/lifecycle';
import { failures, ledgerOutcome, startLoad, tally } from '../support/load';
import { migrationsDir, runMigrate, type MigrateRun } from '../support/migrate';
import { ROOT } from '../support/paths';
import { startWebCluster, type Pm2, type Pm2Proc } from '../support/pm2';
import { psql, type TestPostgres } from '../support/postgres';
import { buildRelease } from '../support/release';
import { until } from '../support/wait';

jest.setTimeout(240_000);

const FIXTURES = path.join(ROOT, 'test', 'support', 'expand-contract');
const EXPAND = '0006_account_display_name.sql';
const CONTRACT = '0007_drop_account_name.sql';
const fixture = (name: string) => fs.readFileSync(path.join(FIXTURES, name), 'utf8');
const EXIT_CONTRACT_REFUSED = 77;
const RELOAD_ONE = path.join(ROOT, 'test', 'support', 'pm2-reload-one.js');
const execFileAsync = promisify(execFile);

const release1 = migrationsDir({});
const release2 = migrationsDir({ [EXPAND]: fixture(EXPAND) });
const withContract = migrationsDir({ [EXPAND]: fixture(EXPAND), [CONTRACT]: fixture(CONTRACT) });
// Release 2's code: every statement on accounts names display_name (as `name` in its answers).
const code2 = buildRelease([
  {
    file: 'ledger/accounts.js',
    from: 'insert into accounts (name, balance',
    to: 'insert into accounts (display_name, balance',
    count: 1,
  },
  {
    file: 'ledger/accounts.js',
    from: 'returning id, name, balance, created_at',
    to: 'returning id, display_name as name, balance, created_at',
    count: 1,
  },
  {
    file: 'ledger/accounts.js',
    from: 'select id, name, balance, created_at',
    to: 'select id, display_name as name, balance, created_at',
    count: 3,
  },
]);
const noDaemon = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-no-pm2-'));

// Release 1 serves first: both workers, started from the checkout.
let pm2: Pm2;
let base: string;
let url: string;
let pg: TestPostgres;

beforeAll(async () => {
  const cluster = await startWebCluster({ LOG_LEVEL: 'info', KEEL_MIGRATIONS_DIR: release1.dir });
  ({ pm2, base, url, pg } = cluster);
});

afterAll(async () => {
  await pm2?.kill();
  await pg?.destroy();
  for (const d of [release1, release2, withContract, code2]) d.rm();
  fs.rmSync(noDaemon, { recursive: true, force: true });
});

interface Creation {
  status?: number;
  error?: string;
  /** The name read back by a GET of the new account (any worker), when both answered. */
  readBack?: string;
  sent: string;
}

/** One loop that opens an account and reads it back, a fresh connection each (either worker). */
function startCreations(): { done: Creation[]; stop(): Promise<Creation[]> } {
  const done: Creation[] = [];
  const agent = new Agent({ pipelining: 0, headersTimeout: 15000, bodyTimeout: 15000 });
  let stopped = false;
  const loop = (async () => {
    for (let i = 0; !stopped && i < 20_000; i++) {
      const c: Creation = { sent: `acct-${i}` };
      try {
        const res = await request(`${base}/api/accounts`, {
          dispatcher: agent,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name: c.sent, balance: 0 }),
        });
        c.status = res.statusCode;
        const body = (await res.body.json()) as { id?: number };
        if (res.statusCode === 201) {
          const got = await request(`${base}/api/accounts/${body.id}`, { dispatcher: agent });
          const read = (await got.body.json()) as { name?: string };
          c.status = got.statusCode === 200 ? 201 : got.statusCode;
          c.readBack = read.name;
        }
      } catch (err) {
        c.error = (err as { code?: string }).code ?? (err as Error).name;
      }
      done.push(c);
    }
  })();
  let ended: Promise<Creation[]> | null = null;
  return {
    done,
    stop() {
      stopped = true;
      ended ??= loop.then(() => agent.close()).then(() => done);
      return ended;
    },
  };
}

const column = async (name: string) =>
  (
    await psql(
      url,
      `select 1 from information_schema.columns where table_name = 'accounts' and column_name = '${name}'`,
    )
  ).length === 1;

function contractRun(home: string): Promise<MigrateRun> {
  return runMigrate({
    DATABASE_URL: url,
    KEEL_MIGRATIONS_DIR: withContract.dir,
    PM2_HOME: home,
    PM2_DISCRETE_MODE: '1',
    PM2_DISABLE_VERSION_CHECK: '1',
  });
}

/** Reloads one worker into release 2 and returns the fleet once it serves again. */
async function reloadIntoRelease2(proc: Pm2Proc): Promise<Pm2Proc[]> {
  pm2.env.KEEL_MIGRATIONS_DIR = release2.dir;
  pm2.env.KEEL_TEST_DIST = code2.dist;
  // Not `pm2 reload <id>`: the CLI's reload of one id never matches the new worker's `ready`
  // and waits out listen_timeout instead (../support/pm2-reload-one.js says why).
  await execFileAsync(process.execPath, [RELOAD_ONE, String(proc.pm_id)], {
    cwd: ROOT,
    env: pm2.env,
    timeout: 60_000,
  });
  return pm2.waitFor(
    (ps) =>
      ps.filter((p) => p.name === 'web' && p.status === 'online').length === 2 &&
      !ps.some((p) => p.pid === proc.pid),
  );
}

/** Waits until `n` more accounts have been opened and read back. */
const moreCreations = (c: { done: Creation[] }, n: number) => {
  const target = c.done.length + n;
  return until(`${n} more account creations`, () => c.done.length >= target, 60_000);
};

test('accounts.name to display_name in three steps, two releases side by side: 0 failed', async () => {
  const accounts = await seedAccounts(base, 10, 1_000_000);
  const load = startLoad({ base, accounts, concurrency: 6, maxMs: 200_000, maxRequests: 300_000 });
  const creations = startCreations();
  try {
    await moreCreations(creations, 20);
    const [w0, w1] = (await pm2.list())
      .filter((p) => p.name === 'web')
      .sort((a, b) => a.pm_id - b.pm_id);

    // Without a PM2 daemon to ask, the contract is refused, and nothing of the run is applied
    // (not even the expand file before it).
    const blind = await contractRun(noDaemon);
    expect(blind.code).toBe(EXIT_CONTRACT_REFUSED);
    expect(await column('display_name')).toBe(false);

    // Step 1, expand: worker 0 reloads into release 2; its boot migrates 0006.
    const mixed = await reloadIntoRelease2(w0!);
    expect(await column('display_name')).toBe(true);
    expect(mixed.find((p) => p.pid === w1!.pid)?.status).toBe('online');
    await moreCreations(creations, 40);

    // Side by side: worker 1 still runs release 1, so the contract is refused and names it.
    const refused = await contractRun(pm2.home);
    expect(refused.code).toBe(EXIT_CONTRACT_REFUSED);
    const line = refused.logs.find((l) => l.msg === 'contract step refused: nothing applied');
    expect(line).toMatchObject({
      migration: CONTRACT,
      expand: EXPAND,
      workers: [{ pid: w1!.pid, pmId: w1!.pm_id, schema: '0005_transfer_json.sql' }],
    });
    expect(await column('name')).toBe(true);

    // Step 2: worker 1 reloads into release 2; now every worker online ships 0006.
    await reloadIntoRelease2(w1!);
    await moreCreations(creations, 20);

    // Step 3, contract: the migrate command applies 0007.
    const contracted = await contractRun(pm2.home);
    expect(contracted.code).toBe(0);
    expect(
      contracted.logs.filter((l) => l.msg === 'migration applied').map((l) => l.migration),
    ).toEqual([CONTRACT]);
    expect(await column('name')).toBe(false);
    await moreCreations(creations, 40);

    const made = await creations.stop();
    const samples = await load.stop();
    process.stdout.write(
      `expand-contract: ${samples.length} requests ${JSON.stringify(tally(samples))}, ` +
        `${made.length} accounts opened and read back\n`,
    );
    expect(failures(samples)).toEqual([]);
    expect(made.filter((c) => c.status !== 201 || c.readBack !== c.sent)).toEqual([]);
    await checkInvariants(url, ledgerOutcome(samples));
    // Every account, whichever release opened it, has its display name.
    const [missing] = await psql<{ n: string }>(
      url,
      `select count(*)::text as n from accounts where display_name is null`,
    );
    expect(missing!.n).toBe('0');
    // The expand was applied once, by a booting worker of release 2; no worker applied 0007.
    const applied = workerLogs(pm2.home)
      .filter((l) => l.msg === 'migration applied')
      .map((l) => l.migration);
    expect(applied.filter((m) => m === EXPAND || m === CONTRACT)).toEqual([EXPAND]);
  } finally {
    await creations.stop();
    await load.stop();
  }
});
