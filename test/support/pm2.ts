/**
 * Real PM2 from the project's own dependency, in an isolated PM2_HOME, with the version check
 * and discrete mode settings that keep it off the network. `kill()` ends that daemon.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './paths';
import { freePort, startTestPostgres, type StartOptions, type TestPostgres } from './postgres';

const execFileAsync = promisify(execFile);
export { ROOT };
export const PM2_BIN = path.join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');
/** ecosystem.config.js with `web` started from test/support/pm2-worker.js (test routes on). */
export const TEST_ECOSYSTEM = path.join(ROOT, 'test', 'support', 'ecosystem.config.js');
const PM2_RUNTIME_BIN = path.join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2-runtime');

export interface Pm2Proc {
  name: string;
  pid: number;
  pm_id: number;
  status: string;
  restarts: number;
  exitCode?: number;
}

export interface Pm2 {
  home: string;
  env: NodeJS.ProcessEnv;
  run(args: string[], timeoutMs?: number): Promise<{ stdout: string; stderr: string }>;
  list(): Promise<Pm2Proc[]>;
  waitFor(pred: (procs: Pm2Proc[]) => boolean, timeoutMs?: number): Promise<Pm2Proc[]>;
  kill(): Promise<void>;
  runtimeBin: string;
}

export function ensureBuilt(): void {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'main.js'))) {
    throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  }
}

export function createPm2(env: Record<string, string>): Pm2 {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-pm2-'));
  const fullEnv: NodeJS.ProcessEnv = {
    ...process.env,
    PM2_HOME: home,
    PM2_DISCRETE_MODE: '1',
    PM2_DISABLE_VERSION_CHECK: '1',
    ...env,
  };
  // The jest process's own settings must not leak into the workers.
  delete fullEnv.NODE_ENV;
  delete fullEnv.JEST_WORKER_ID;
  if (env.NODE_ENV) fullEnv.NODE_ENV = env.NODE_ENV;

  const pm2: Pm2 = {
    home,
    env: fullEnv,
    runtimeBin: PM2_RUNTIME_BIN,
    run: (args, timeoutMs = 60000) =>
      execFileAsync(process.execPath, [PM2_BIN, ...args], {
        cwd: ROOT,
        env: fullEnv,
        timeout: timeoutMs,
      }),
    async list() {
      const { stdout } = await pm2.run(['jlist']);
      const start = stdout.indexOf('[');
      const procs = JSON.parse(stdout.slice(start)) as Array<{
        name: string;
        pid: number;
        pm_id: number;
        pm2_env: { status: string; restart_time: number; exit_code?: number };
      }>;
      return procs.map((p) => ({
        name: p.name,
        pid: p.pid,
        pm_id: p.pm_id,
        status: p.pm2_env.status,
        restarts: p.pm2_env.restart_time,
        exitCode: p.pm2_env.exit_code,
      }));
    },
    async waitFor(pred, timeoutMs = 30000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const procs = await pm2.list();
        if (pred(procs)) return procs;
        if (Date.now() > until) throw new Error(`pm2 state not reached: ${JSON.stringify(procs)}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    async kill() {
      await pm2.run(['kill'], 30000).catch(() => undefined);
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
  return pm2;
}

/** The environment of the test `web` app: 2 workers on 127.0.0.1, a 3 s drain. */
export function webEnv(databaseUrl: string, port: number): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    WEB_CONCURRENCY: '2',
    PORT: String(port),
    HOST: '127.0.0.1',
    SHUTDOWN_TIMEOUT_MS: '3000',
  };
}

export interface WebCluster {
  pg: TestPostgres;
  pm2: Pm2;
  url: string;
  port: number;
  base: string;
}

/**
 * A real Postgres and the real ecosystem.config.js's `web` app (TEST_ECOSYSTEM) under PM2: 2 workers on
 * 127.0.0.1, test routes on, a 3 s drain. `env` overrides; `start: false` leaves the
 * `pm2 start` to the test. The caller ends it with `pm2.kill()` and `pg.destroy()`.
 */
export async function startWebCluster(
  env: Record<string, string> = {},
  { start = true, pg: pgOptions }: { start?: boolean; pg?: StartOptions } = {},
): Promise<WebCluster> {
  ensureBuilt();
  const pg = await startTestPostgres(pgOptions);
  const url = await pg.createDatabase();
  const port = await freePort();
  const pm2 = createPm2({ ...webEnv(url, port), ...env });
  if (start) {
    await pm2.run(['start', TEST_ECOSYSTEM]);
    await pm2.waitFor(
      (ps) => ps.filter((p) => p.name === 'web' && p.status === 'online').length === 2,
    );
  }
  return { pg, pm2, url, port, base: `http://127.0.0.1:${port}` };
}
