/**
 * Passwords never reach the logs. The real entry point (dist/main.js) is started with URLs that
 * carry a password and driven through every error path; its stdout and stderr are searched for
 * the password, raw and URL-encoded. Each path must also leave a line that explains it.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ensureBuilt, ROOT } from '../support/pm2';
import { freePort, psql, startTestPostgres, type TestPostgres } from '../support/postgres';

let pg: TestPostgres;
let appDb: string;
// Distinctive, with characters that URLs must encode.
const SECRET = 'Pa55#w0rd!keel-app';
const WRONG = 'Wr0ng#pa55!keel';
const NOPRIV_SECRET = 'N0priv#pa55!keel';

beforeAll(async () => {
  ensureBuilt();
  pg = await startTestPostgres({ localOnly: true });
  const admin = await pg.createDatabase();
  appDb = new URL(admin).pathname.slice(1);
  await psql(pg.url(), `create role keel_app login password '${SECRET}'`);
  await psql(pg.url(), `alter database "${appDb}" owner to keel_app`);
  // Can connect, cannot create tables (PostgreSQL 15+: public schema is not writable by PUBLIC).
  await psql(pg.url(), `create role keel_nopriv login password '${NOPRIV_SECRET}'`);
});

afterAll(async () => {
  await pg?.destroy();
});

function dbUrl(user: string, password: string, database = appDb, port = pg.port): string {
  return `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
}

interface Run {
  out: string;
  code: number | null;
  lines: Array<Record<string, unknown>>;
}

/**
 * Starts dist/main.js with `env`, waits until `done(output)` or its exit (at most 15 s), then
 * asks it to stop (SIGTERM to the child we started) and collects everything it wrote.
 */
async function run(env: Record<string, string>, done: (out: string) => boolean): Promise<Run> {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'main.js')], {
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      PORT: String(await freePort()),
      LOG_LEVEL: 'debug',
      READY_WAIT_MS: '500',
      SHUTDOWN_TIMEOUT_MS: '2000',
      DB_CONNECT_TIMEOUT_S: '2',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  let code: number | null | undefined;
  void exited.then((c) => (code = c));
  const deadline = Date.now() + 15000;
  while (code === undefined && !done(out) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  if (code === undefined) {
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10000);
    code = await exited;
    clearTimeout(killer);
  }
  await new Promise((r) => setImmediate(r));
  const lines = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { out, code, lines };
}

function expectNoSecret(out: string, ...secrets: string[]): void {
  for (const s of secrets) {
    expect(out).not.toContain(s);
    expect(out).not.toContain(encodeURIComponent(s));
  }
}

const has =
  (msg: string, fields: Record<string, unknown> = {}) =>
  (out: string) =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .some((l) => {
        const line = JSON.parse(l) as Record<string, unknown>;
        return line.msg === msg && Object.entries(fields).every(([k, v]) => line[k] === v);
      });

test('wrong password: the server refusal is logged (28P01), the password is not', async () => {
  const r = await run(
    { DATABASE_URL: dbUrl('keel_app', WRONG) },
    has('db connection closed', { serverCode: '28P01' }),
  );
  expectNoSecret(r.out, WRONG, SECRET);
  const refusal = r.lines.find((l) => l.serverCode === '28P01')!;
  expect(refusal).toMatchObject({
    level: 'info',
    reason: 'server_closed',
    serverMessage: 'password authentication failed for user "keel_app"',
    worker: '0',
    pid: expect.any(Number),
    time: expect.any(String),
  });
  // Still running (not-ready, retrying) until we stopped it.
  expect(r.lines.find((l) => l.msg === 'shutdown started')).toMatchObject({ reason: 'SIGTERM' });
  expect(r.lines.find((l) => l.msg === 'starting')!.database).toBe(
    `postgres://keel_app:***@127.0.0.1:${pg.port}/${appDb}`,
  );
});

test('unreachable host: connection refused is logged, requests get 503, no password', async () => {
  const closedPort = await freePort();
  let base = '';
  const r = await run({ DATABASE_URL: dbUrl('keel_app', SECRET, appDb, closedPort) }, (out) => {
    const m = /"msg":"listening".*?"port":(\d+)/.exec(out);
    if (m && !base) {
      base = `http://127.0.0.1:${m[1]}`;
      void fetch(`${base}/api/accounts`).then((res) => res.text());
    }
    return (
      has('request', { status: 503 })(out) &&
      has('db connection closed', { error: 'ECONNREFUSED' })(out)
    );
  });
  expectNoSecret(r.out, SECRET);
  expect(r.lines.find((l) => l.error === 'ECONNREFUSED')).toMatchObject({
    msg: 'db connection closed',
    reason: 'network_error',
    established: false,
  });
  expect(r.lines.find((l) => l.msg === 'shutdown started')).toMatchObject({ reason: 'SIGTERM' });
  expect(
    r.lines.some((l) => l.msg === 'request' && l.status === 503 && typeof l.reqId === 'string'),
  ).toBe(true);
});

test('a database that does not exist: 3D000 is logged, no password', async () => {
  const r = await run(
    { DATABASE_URL: dbUrl('keel_app', SECRET, 'no_such_database') },
    has('db connection closed', { serverCode: '3D000' }),
  );
  expectNoSecret(r.out, SECRET);
  expect(r.lines.find((l) => l.serverCode === '3D000')!.serverMessage).toBe(
    'database "no_such_database" does not exist',
  );
});

test('configuration errors: one line, exit 78, no password', async () => {
  const bad = await run({ DATABASE_URL: dbUrl('keel_app', SECRET), DB_POOL_MAX: '0' }, () => false);
  expect(bad.code).toBe(78);
  expect(bad.out).toMatch(/DB_POOL_MAX="0" is below 1/);
  expectNoSecret(bad.out, SECRET);
  const malformed = await run(
    { DATABASE_URL: `postgres//keel_app:${SECRET}@127.0.0.1/x` },
    () => false,
  );
  expect(malformed.code).toBe(78);
  expect(malformed.out).toMatch(/DATABASE_URL="<hidden>"/);
  expectNoSecret(malformed.out, SECRET);
});

test('migration failure: logged with its cause, exit 1, neither password appears', async () => {
  const r = await run(
    {
      DATABASE_URL: dbUrl('keel_app', SECRET),
      DATABASE_MIGRATION_URL: dbUrl('keel_nopriv', NOPRIV_SECRET),
    },
    () => false,
  );
  expect(r.code).toBe(1);
  expect(r.lines.find((l) => l.msg === 'migrations failed')).toMatchObject({
    level: 'error',
    code: '42501',
  });
  expectNoSecret(r.out, SECRET, NOPRIV_SECRET);

  const wrong = await run(
    { DATABASE_URL: dbUrl('keel_app', SECRET), DATABASE_MIGRATION_URL: dbUrl('keel_app', WRONG) },
    () => false,
  );
  expect(wrong.code).toBe(1);
  expect(wrong.lines.find((l) => l.msg === 'migrations failed')).toMatchObject({ code: '28P01' });
  expectNoSecret(wrong.out, SECRET, WRONG);
});
