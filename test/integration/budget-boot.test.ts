/**
 * The connection budget at boot, against a real server whose max_connections is small: the
 * real entry point refuses (78) a fleet that can never fit, with the arithmetic in one line;
 * one that is over only because others hold connections now warns and serves.
 */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import postgres from 'postgres';
import { ensureBuilt, ROOT } from '../support/pm2';
import { freePort, psql, startTestPostgres, type TestPostgres } from '../support/postgres';
import { waitFor } from '../support/wait';

let pg: TestPostgres;
let appUrl: string;

beforeAll(async () => {
  ensureBuilt();
  // 20 slots, 3 reserved for superusers: a non-superuser application role may use 17.
  pg = await startTestPostgres({
    settings: { max_connections: 20, superuser_reserved_connections: 3 },
  });
  const su = await pg.createDatabase();
  await psql(su, `create role keel_budget login password 'budget-pw'`);
  await psql(su, `grant all on schema public to keel_budget`);
  const u = new URL(su);
  u.username = 'keel_budget';
  u.password = 'budget-pw';
  appUrl = u.toString();
});

afterAll(async () => {
  await pg?.destroy();
});

const baseEnv = (env: Record<string, string>) => ({
  PATH: process.env.PATH ?? '',
  DATABASE_URL: appUrl,
  HOST: '127.0.0.1',
  SHUTDOWN_TIMEOUT_MS: '2000',
  ...env,
});

test('a fleet that cannot fit is refused with exit 78 and the whole arithmetic in one line', () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'main.js')], {
    env: baseEnv({ PORT: '0', WEB_CONCURRENCY: '2', DB_POOL_MAX: '10', KEEL_REPLICAS: '1' }),
    encoding: 'utf8',
    timeout: 60000,
  });
  expect(r.status).toBe(78);
  const lines = r.stdout.split('\n').filter((l) => l.includes('"msg":"connection budget'));
  expect(lines).toHaveLength(1);
  const entry = JSON.parse(lines[0] as string);
  expect(entry.level).toBe('error');
  expect(entry.msg).toMatch(
    /^connection budget exceeded: 1 replicas x 2 workers x 10 = 20, \+ 10 reload overlap \+ 2 migrations \+ 2 probes = 34 at peak > \d+ allowed \(max_connections 20 - 3 reserved - \d+ held by others\) -> lower DB_POOL_MAX/,
  );
  // It never listened, and the budget is what stopped it.
  expect(r.stdout).not.toContain('"msg":"listening"');
  expect(r.stdout).toMatch(/"msg":"shutdown complete".*"reason":"connection budget"/);
  expect(r.stdout).not.toContain('budget-pw');
});

async function bootAndStop(env: Record<string, string>): Promise<{ code: number; out: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'main.js')], {
    env: baseEnv({ PORT: String(port), ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  let gone = false;
  const exited = new Promise<number>((r) =>
    child.once('exit', (code) => {
      gone = true;
      r(code ?? -1);
    }),
  );
  let ready = false;
  try {
    // Ready, and the budget check has spoken: it runs beside the boot (it asks the server who
    // holds connections), so on a loaded box its line may come after /readyz says 200.
    let readyAt = 0;
    await waitFor(async () => {
      if (!ready) {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null);
        ready = res?.status === 200;
        readyAt = Date.now();
      }
      const spoke = out.includes('"msg":"connection budget') || Date.now() - readyAt > 15_000;
      return (ready && spoke) || gone;
    }, 100);
  } finally {
    child.kill('SIGTERM');
  }
  const code = await exited;
  if (!ready) throw new Error(`the worker exited ${code} before /readyz said 200:\n${out}`);
  return { code, out };
}

test('over the limit only because others hold connections now: a warning, and it serves', async () => {
  // Others (not Keel) hold 14 of the 17 slots; the fleet's own peak is 2 + 2 + 1 = 5.
  const others = postgres(appUrl, { max: 14, connection: { application_name: 'psql' } });
  const held = await Promise.all(Array.from({ length: 14 }, () => others.reserve()));
  try {
    const { code, out } = await bootAndStop({ WEB_CONCURRENCY: '1', DB_POOL_MAX: '2' });
    expect(code).toBe(0);
    const line = out.split('\n').find((l) => l.includes('"msg":"connection budget'));
    expect(JSON.parse(line as string)).toMatchObject({ level: 'warn' });
    expect(line).toMatch(
      /1 replicas x 1 workers x 2 = 2, \+ 2 reload overlap \+ 1 migrations \+ 1 probes = 6 at peak > 3 allowed \(max_connections 20 - 3 reserved - 14 held by others\) \(over the limit only with the connections others hold now\)/,
    );
  } finally {
    held.forEach((c) => c.release());
    await others.end({ timeout: 5 });
  }
});

test('KEEL_BUDGET_CHECK=warn boots the fleet that refuse would stop, and says so', async () => {
  const { code, out } = await bootAndStop({
    WEB_CONCURRENCY: '2',
    DB_POOL_MAX: '10',
    KEEL_BUDGET_CHECK: 'warn',
  });
  expect(code).toBe(0);
  const line = out.split('\n').find((l) => l.includes('"msg":"connection budget'));
  expect(JSON.parse(line as string)).toMatchObject({ level: 'warn' });
  expect(line).toContain('= 34 at peak >');
});
