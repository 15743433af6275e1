/** The built `keel diagnose` binary: exit codes, one line on bad config, Ctrl-C closes its connections. */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { holds, sleep } from '../support/wait';
import { ensureBuilt, ROOT } from '../support/pm2';
import type { Report } from '../../src/cli/diagnose/report';
import { freePort, psql, startTestPostgres, type TestPostgres } from '../support/postgres';

const BIN = path.join(ROOT, 'dist', 'cli', 'diagnose.js');
const run = (args: string[], env: Record<string, string>) => {
  ensureBuilt();
  return spawnSync(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
    timeout: 30000,
  });
};

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startTestPostgres({ localOnly: true });
});
afterAll(async () => {
  await pg?.destroy();
});

test('a bad variable: one line naming it, exit 78, the URL password never printed', () => {
  const r = run(['diagnose'], {
    DATABASE_URL: 'postgres://keel:pa55word@127.0.0.1:1/keel',
    DB_POOL_MAX: '0',
  });
  expect(r.status).toBe(78);
  expect(r.stderr).toBe(
    'keel diagnose: invalid configuration: DB_POOL_MAX="0" is below 1; allowed: an integer from 1 to 1000\n',
  );
  expect(r.stdout).toBe('');
  const bad = run(['diagnose'], { DATABASE_URL: 'postgres//keel:hunter2@host' });
  expect(bad.status).toBe(78);
  expect(bad.stderr).toMatch(/DATABASE_URL="<hidden>" is not a postgres:\/\/ URL/);
  expect(bad.stdout + bad.stderr).not.toContain('hunter2');
});

test('usage: --help exits 0, an unknown flag 64', () => {
  expect(run(['diagnose', '--help'], {}).status).toBe(0);
  const r = run(['diagnose', '--no-such-flag'], {});
  expect(r.status).toBe(64);
  expect(r.stderr).toMatch(/^keel diagnose: Unknown option '--no-such-flag'/);
});

test('the exit code is the worst status: 2 for a wrong password, whose text never appears', () => {
  const url = new URL(pg.url());
  url.password = 'Not-Th3-Password';
  const r = run(['diagnose'], { DATABASE_URL: url.toString(), WEB_CONCURRENCY: '1' });
  expect(r.status).toBe(2);
  expect(r.stdout).toMatch(/^fail +path\.auth +wrong_password: /m);
  expect(r.stdout).toMatch(/exit 2\n$/);
  expect(r.stdout + r.stderr).not.toContain('Not-Th3-Password');
});

test('a multi-host DATABASE_URL: every host checked, the pool reached through the one that answers', async () => {
  // h1:port1,h2:port2 is a documented form; the first host here refuses, the second is the server.
  const dead = await freePort();
  const live = new URL(pg.url());
  const password = 'p@ss:w/rd-multi';
  await psql(pg.url(), `create role multi login password '${password}'`);
  try {
    const url = `postgres://multi:${encodeURIComponent(password)}@127.0.0.1:${dead},${live.host}${live.pathname}`;
    const r = run(['diagnose', '--json'], { DATABASE_URL: url, WEB_CONCURRENCY: '1' });
    expect(r.stderr).not.toMatch(/Invalid URL|ERR_INVALID_URL/);
    const report = JSON.parse(r.stdout) as Report;
    const tcp = report.checks.filter((c) => c.id === 'path.tcp');
    expect(tcp.map((c) => c.status)).toEqual(['warn', 'ok']);
    expect(tcp[0]!.value).toBe('refused');
    expect(tcp[0]!.summary).toMatch(
      new RegExp(`^127\\.0\\.0\\.1:${dead}: nothing accepts connections`),
    );
    expect(report.checks.find((c) => c.id === 'path.auth')).toMatchObject({ status: 'ok' });
    expect(report.checks.find((c) => c.id === 'server.version')).toMatchObject({ status: 'ok' });
    expect(report.target.url).toBe(
      `postgres://multi:***@127.0.0.1:${dead},${live.host}${live.pathname}?target_session_attrs=read-write`,
    );
    expect(r.stdout + r.stderr).not.toContain(password);
    expect(r.stdout + r.stderr).not.toContain(encodeURIComponent(password));
  } finally {
    await psql(pg.url(), 'drop role multi');
  }
});

test('Ctrl-C during an idle probe closes every connection it opened and exits 130', async () => {
  const held = async () =>
    (
      await psql<{ n: number }>(
        pg.url(),
        `select count(*)::int as n from pg_stat_activity where application_name = 'keel-diagnose'`,
      )
    )[0]!.n;
  ensureBuilt();
  const child = spawn(
    process.execPath,
    [BIN, 'diagnose', '--idle-probe', '--max', '120', '--connections', '4'],
    {
      env: { PATH: process.env.PATH, DATABASE_URL: pg.url(), WEB_CONCURRENCY: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    expect(await holds(() => stderr.includes('idle probe: round 1'), 20000)).toBe(true);
    // Four probe connections sit idle now.
    let n = 0;
    for (let i = 0; i < 100 && n < 4; i++) n = await held().then(async (v) => (await sleep(50), v));
    expect(n).toBeGreaterThanOrEqual(4);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toMatch(/diagnose: SIGINT, closing \d+ connection\(s\)/);
    let left = n;
    for (let i = 0; i < 100 && left > 0; i++)
      left = await held().then(async (v) => (await sleep(50), v));
    expect(left).toBe(0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
