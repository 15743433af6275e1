/** The real ecosystem.config.js under real PM2: two workers, each with its own connections. */
import { getFresh } from '../support/http';
import { spawnSync } from 'node:child_process';
import {
  createPm2,
  PM2_BIN,
  ROOT,
  startWebCluster,
  TEST_ECOSYSTEM,
  type Pm2,
} from '../support/pm2';
import { freePort, psql, type TestPostgres } from '../support/postgres';
import { sleep } from '../support/wait';
import { pm2Apps, SEMI_SPACE_MB } from '../../src/config/pm2-apps';

/** How many first back-offs a restart that PM2 scheduled may take to show in `pm2 jlist`. */
const RESTART_MARGIN = 10;

let pg: TestPostgres;
let pm2: Pm2;
let url: string;
let port: number;

beforeAll(async () => {
  ({ pg, pm2, url, port } = await startWebCluster({}, { start: false }));
});

afterAll(async () => {
  await pm2?.kill();
  await pg?.destroy();
});

test('pm2 start ecosystem.config.js: two web workers answer and hold their own connections', async () => {
  await pm2.run(['start', TEST_ECOSYSTEM]);
  const procs = await pm2.waitFor(
    (ps) => ps.filter((p) => p.name === 'web' && p.status === 'online').length === 2,
  );
  expect(procs.map((p) => p.name)).toEqual(['web', 'web']); // DATABASE_URL set: no `db` app

  const pids = new Set<number>();
  const execArgv = new Map<number, string[]>();
  for (let i = 0; i < 100 && pids.size < 2; i++) {
    const res = await getFresh(`http://127.0.0.1:${port}/__test/whoami`);
    const who = JSON.parse(res.body) as { pid: number; execArgv: string[] };
    pids.add(who.pid);
    execArgv.set(who.pid, who.execArgv);
  }
  // Both workers reach the database: readiness runs `select 1` on whichever answers.
  for (let i = 0; i < 4; i++)
    expect((await getFresh(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
  expect([...pids].sort()).toEqual(procs.map((p) => p.pid).sort());
  // Each worker runs with the ecosystem's V8 flags (its young generation capped).
  for (const argv of execArgv.values())
    expect(argv).toContain(`--max-semi-space-size=${SEMI_SPACE_MB}`);

  const rows = await psql<{ application_name: string }>(
    url,
    "select distinct application_name from pg_stat_activity where datname = current_database() and application_name like 'keel:%' and application_name not like '%migrate'",
  );
  const names = rows.map((r) => r.application_name).sort();
  expect(names).toEqual(procs.map((p) => `keel:${p.pm_id}:${p.pid}`).sort());
});

test('a configuration error exits 78 and PM2 does not restart it', async () => {
  const bad = createPm2({
    DATABASE_URL: url,
    WEB_CONCURRENCY: '1',
    PORT: String(await freePort()),
    DB_POOL_MAX: 'lots',
  });
  try {
    await bad.run(['start', 'ecosystem.config.js']).catch(() => undefined);
    // PM2 labels it "waiting restart" (exp_backoff sets that label), but with pid 0 and no
    // restart scheduled: stop_exit_codes wins.
    const procs = await bad.waitFor((ps) => ps[0]?.exitCode === 78);
    // Had PM2 scheduled a restart at that exit, it would fire after the app's first back-off
    // (exp_backoff_restart_delay, from the config PM2 read): wait that out, with a margin.
    const web = pm2Apps(bad.env, ROOT).apps.find((a) => a.name === 'web')!;
    await sleep(web.exp_backoff_restart_delay * RESTART_MARGIN);
    const after = await bad.list();
    expect(after[0]!.restarts).toBe(0);
    expect(after[0]!.pid).toBe(0);
    expect(procs[0]!.restarts).toBe(0);
    const { stdout } = await bad.run(['logs', 'web', '--nostream', '--lines', '20', '--err']);
    expect(stdout).toMatch(
      /DB_POOL_MAX="lots" is not an integer; allowed: an integer from 1 to 1000/,
    );
  } finally {
    await bad.kill();
  }
});

test.each([
  ['pm2 start', () => [PM2_BIN, 'start']],
  ['pm2-runtime', (p: Pm2) => [p.runtimeBin, 'start']],
])(
  '%s with a bad variable the ecosystem reads: one line naming it, exit 78, nothing started',
  async (_label, command) => {
    const bad = createPm2({ DATABASE_URL: url, WEB_CONCURRENCY: 'two', PORT: String(port) });
    try {
      const [bin, verb] = command(bad);
      const r = spawnSync(process.execPath, [bin!, verb!, 'ecosystem.config.js'], {
        cwd: ROOT,
        env: bad.env,
        encoding: 'utf8',
        timeout: 60000,
      });
      expect(r.status).toBe(78);
      expect(r.stderr.trim().split('\n')).toEqual([
        'keel: invalid configuration: WEB_CONCURRENCY="two" is not an integer; allowed: an integer from 1 to 256',
      ]);
      expect(await bad.list()).toEqual([]);
    } finally {
      await bad.kill();
    }
  },
);
