/**
 * The two things the benchmark measures, behind one shape: `start()` resolves with the worker
 * pids once the target answers, `stop()` resolves when those pids are gone.
 *  - keel: the real ecosystem.config.js under PM2 cluster mode (the fixture's isolated PM2).
 *  - baseline: bench/baseline.ts, node:cluster.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'undici';
import { errorCode } from './errors';
import { ROOT, createPm2 } from './fixtures';
import type { Snapshot } from './snapshot';
import type { Cleanup } from './types';
import { pidExists } from '../test/support/procfs';

const WORKERS = 2;
// Keel's default DB_POOL_MAX, set explicitly so both targets get the same pool per worker.
const POOL_MAX = 10;

async function waitGone(pids: number[], timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (pids.some(pidExists)) {
    if (Date.now() > until) return false;
    await sleep(100);
  }
  return true;
}

/**
 * Polls `GET path` until it answers 200 (bounded). Each probe uses its own connection, closed
 * right after: an idle keep-alive socket left behind would hold the server's drain until its
 * shutdown deadline, and every stop would look 10 s slow.
 */
async function waitAnswering(port: number, urlPath: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < until) {
    const client = new Client(`http://127.0.0.1:${port}`, {
      headersTimeout: 2000,
      bodyTimeout: 2000,
    });
    try {
      const res = await client.request({ method: 'GET', path: urlPath });
      await res.body.dump();
      if (res.statusCode === 200) return;
      last = `status ${res.statusCode}`;
    } catch (err) {
      last = errorCode(err);
    } finally {
      await client.destroy();
    }
    await sleep(200);
  }
  throw new Error(
    `127.0.0.1:${port}${urlPath} did not answer 200 within ${timeoutMs} ms (${last})`,
  );
}

/**
 * Keel under PM2 from the run's snapshot (`app.root`, see snapshot.js) with its real
 * ecosystem.config.js; one daemon for the whole run, `pm2 kill` when the run ends (any way).
 */
/** What the compare loop measures: Keel or the baseline. */
export interface Target {
  name: string;
  port: number;
  pids(): number[];
  daemonPid(): number | null;
  start(): Promise<number[]>;
  stop(): Promise<void>;
  /** Why a worker went away, from the supervisor's own logs (Keel: PM2's), or '' if unknown. */
  lastWords?(): string;
}

export type Keel = ReturnType<typeof createKeel>;

function createKeel({
  app,
  databaseUrl,
  port,
  cleanup,
  env = {},
  name = 'keel',
  workers = WORKERS,
}: {
  app: Snapshot;
  databaseUrl: string;
  port: number;
  cleanup: Cleanup;
  env?: Record<string, string>;
  name?: string;
  /** PM2 workers (WEB_CONCURRENCY); the scaling run varies it. */
  workers?: number;
}) {
  const pm2 = createPm2({
    DATABASE_URL: databaseUrl,
    PORT: String(port),
    HOST: '127.0.0.1',
    WEB_CONCURRENCY: String(workers),
    DB_POOL_MAX: String(POOL_MAX),
    NODE_ENV: 'production',
    ...env,
  });
  const kill = cleanup.add('pm2 kill', () => pm2.kill());
  let pids: number[] = [];

  /**
   * Why workers went away or never answered: what PM2's daemon did to them (exit code, signal, a
   * memory limit), the end of their stderr, and the error lines of their JSON log on stdout.
   */
  const lastWords = (): string => {
    const lines = (file: string) =>
      fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trimEnd().split('\n') : [];
    const logs = path.join(pm2.home, 'logs');
    return [
      'PM2:',
      ...lines(path.join(pm2.home, 'pm2.log'))
        .filter((l) => /exited|memory|restart|kill|stopp|signal/i.test(l))
        .slice(-8),
      'web-error.log ends:',
      ...lines(path.join(logs, 'web-error.log')).slice(-25),
      'error lines on stdout:',
      ...lines(path.join(logs, 'web-out.log'))
        .filter((l) => /"level":"(error|fatal|crit)"/.test(l))
        .slice(-5),
    ].join('\n');
  };

  const webPids = async () =>
    (await pm2.list()).filter((p) => p.name === 'web' && p.status === 'online').map((p) => p.pid);

  return {
    name,
    pm2,
    port,
    /** `pm2 kill` now (and not again at cleanup). */
    kill,
    pids: () => pids,
    /** PM2's daemon pid: in cluster mode it also carries every worker's stdout to the log file. */
    daemonPid(): number | null {
      const file = path.join(pm2.home, 'pm2.pid');
      return fs.existsSync(file) ? Number(fs.readFileSync(file, 'utf8').trim()) : null;
    },
    logFile: () => path.join(pm2.home, 'logs', 'web-out.log'),
    lastWords,
    async start() {
      await pm2.run(['start', path.join(app.root, 'ecosystem.config.js')], 90000);
      try {
        await waitAnswering(port, '/readyz', 60000);
      } catch (err) {
        // The workers' own last words say why (pm2 kill removes its home and these logs).
        throw new Error(`${(err as Error).message}\n${lastWords()}`);
      }
      const procs = await pm2.waitFor(
        (ps) => ps.filter((p) => p.name === 'web' && p.status === 'online').length === workers,
        30000,
      );
      pids = procs.filter((p) => p.name === 'web').map((p) => p.pid);
      return pids;
    },
    /** After a reload the workers are new processes. */
    async refreshPids() {
      pids = await webPids();
      return pids;
    },
    async stop() {
      const old = pids;
      await pm2.run(['delete', 'web'], 60000);
      if (!(await waitGone(old, 20000))) throw new Error(`keel workers ${old} still alive`);
      pids = [];
    },
  };
}

/** bench/baseline.ts under node:cluster, stopped by pid (SIGTERM, then SIGKILL). */
function createBaseline({
  databaseUrl,
  port,
  cleanup,
  probePath,
  workers = WORKERS,
}: {
  databaseUrl: string;
  port: number;
  cleanup: Cleanup;
  probePath: string;
  /** node:cluster workers; the scaling run varies it. */
  workers?: number;
}): Target {
  let child: ChildProcess | null = null;
  let pids: number[] = [];
  let undo: (() => Promise<void>) | null = null;

  async function stop() {
    if (!child) return;
    const primary = child;
    const all = [primary.pid as number, ...pids];
    child = null;
    if (pidExists(primary.pid as number)) primary.kill('SIGTERM');
    if (!(await waitGone(all, 10000))) {
      for (const pid of all.filter(pidExists)) process.kill(pid, 'SIGKILL');
      await waitGone(all, 5000);
    }
    pids = [];
  }

  return {
    name: 'baseline',
    port,
    pids: () => pids,
    daemonPid: () => null,
    async start() {
      const started = spawn(process.execPath, [path.join(__dirname, 'baseline.js')], {
        cwd: ROOT,
        env: {
          ...process.env,
          BASELINE_DATABASE_URL: databaseUrl,
          BASELINE_PORT: String(port),
          BASELINE_WORKERS: String(workers),
          BASELINE_POOL_MAX: String(POOL_MAX),
        },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      child = started;
      undo = cleanup.add('stop baseline', stop);
      const ready = await Promise.race([
        new Promise<number[]>((resolve) =>
          started.on('message', (m: { type?: string; pids: number[] } | null) => {
            if (m && m.type === 'ready') resolve(m.pids);
          }),
        ),
        new Promise<null>((resolve) => started.once('exit', () => resolve(null))),
        sleep(30000, null),
      ]);
      if (!ready) throw new Error('the baseline did not start within 30 s');
      pids = ready;
      await waitAnswering(port, probePath, 10000);
      return pids;
    },
    async stop() {
      if (undo) await undo();
      undo = null;
    },
  };
}

export { createKeel, createBaseline, waitAnswering, waitGone, WORKERS, POOL_MAX };
