/**
 * The migrate command's contract gate: which releases the workers of this machine's PM2 daemon
 * run. Each Keel worker publishes the newest migration file its release ships as the PM2 metric
 * `schema` (src/worker.ts); `pm2 jlist` shows it per process. A contract step waits until no
 * worker online lacks its expand file (docs/migrations.md).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  ContractRefused,
  previousRelease,
  type ContractGate,
  type FleetWorker,
} from '../db/contract';
import type { Logger } from '../logger';
import { PM2_SCHEMA_METRIC } from '../metrics/pm2';

const execFileAsync = promisify(execFile);
/** Keel's app in ecosystem.config.js (src/config/pm2-apps.ts). */
const WEB_APP = 'web';
/** Statuses of a process that serves no more, and will not again on its own. */
const GONE = new Set(['stopped', 'errored']);

function daemonAlive(home: string): boolean {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(path.join(home, 'pm2.pid'), 'utf8').trim());
  } catch {
    return false;
  }
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

/** The `web` workers not stopped, or null when no PM2 daemon runs with this PM2_HOME. */
export async function pm2Workers(home: string): Promise<FleetWorker[] | null> {
  // `pm2 jlist` would start a daemon that is not there.
  if (!daemonAlive(home)) return null;
  const bin = path.join(path.dirname(require.resolve('pm2/package.json')), 'bin', 'pm2');
  const { stdout } = await execFileAsync(process.execPath, [bin, 'jlist'], {
    env: { ...process.env, PM2_HOME: home },
    timeout: 15_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  // The list is one line of JSON; PM2's own notices ("[PM2] ...") may come before it.
  const line = stdout.split('\n').find((l) => l.startsWith('[{') || l.trim() === '[]');
  if (line === undefined)
    throw new Error(`pm2 jlist printed no process list: ${stdout.slice(0, 200)}`);
  const procs = JSON.parse(line) as Array<{
    name: string;
    pid: number;
    pm_id: number;
    pm2_env: { status: string; axm_monitor?: Record<string, { value?: unknown }> };
  }>;
  return procs
    .filter((p) => p.name === WEB_APP && !GONE.has(p.pm2_env.status))
    .map((p) => {
      const schema = p.pm2_env.axm_monitor?.[PM2_SCHEMA_METRIC]?.value;
      return {
        pid: p.pid,
        id: p.pm_id,
        status: p.pm2_env.status,
        schema: typeof schema === 'string' && schema !== '' ? schema : null,
      };
    });
}

export interface Pm2GateDeps {
  /** PM2_HOME of the daemon to ask. */
  home: string;
  /** KEEL_CONTRACT_CONFIRM: the file name, when the fleet cannot be seen (or does not say). */
  confirm: string | null;
  log: Logger;
  list?: (home: string) => Promise<FleetWorker[] | null>;
  sleep?: (ms: number) => Promise<void>;
}

// A worker publishes its schema about a second after it starts (PM2's metric interval): one
// that does not say yet is asked again, a bounded number of times.
const UNKNOWN_TRIES = 6;
const UNKNOWN_PAUSE_MS = 1000;

export function pm2ContractGate(deps: Pm2GateDeps): ContractGate {
  const list = deps.list ?? pm2Workers;
  const sleep = deps.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  const describe = (w: FleetWorker[]) =>
    w.map((x) => `pid ${x.pid} (pm_id ${x.id}, ${x.status}, schema ${x.schema ?? 'unknown'})`);
  return async (file) => {
    const expand = file.contract;
    const confirmed = deps.confirm === file.name;
    const confirmHint = `once none is (on every machine), run again with KEEL_CONTRACT_CONFIRM=${file.name}`;
    for (let attempt = 1; ; attempt++) {
      const workers = await list(deps.home);
      if (workers === null) {
        if (confirmed) {
          deps.log.warn('contract step confirmed by KEEL_CONTRACT_CONFIRM (no PM2 daemon to ask)', {
            migration: file.name,
            expand,
          });
          return;
        }
        throw new ContractRefused(
          file.name,
          expand,
          `no PM2 daemon in ${deps.home} to ask whether a worker without ${expand} is online; ${confirmHint}`,
        );
      }
      const old = previousRelease(workers, expand);
      // A worker that names an older schema is of the previous release: nothing overrides that.
      const known = old.filter((w) => w.schema !== null);
      if (known.length > 0) {
        throw new ContractRefused(
          file.name,
          expand,
          `${known.length} worker(s) online without ${expand}: ${describe(known).join(', ')}; ` +
            `reload them (pm2 reload ${WEB_APP}) and run again`,
          known,
        );
      }
      if (old.length === 0 || confirmed) {
        deps.log.info('contract step: no worker online lacks its expand file', {
          migration: file.name,
          expand,
          workers: describe(workers),
          ...(old.length > 0 ? { confirmedBy: 'KEEL_CONTRACT_CONFIRM' } : {}),
        });
        return;
      }
      if (attempt >= UNKNOWN_TRIES) {
        throw new ContractRefused(
          file.name,
          expand,
          `${old.length} worker(s) online do not say their schema (PM2 metrics off, or a release ` +
            `from before this check): ${describe(old).join(', ')}; ${confirmHint}`,
          old,
        );
      }
      await sleep(UNKNOWN_PAUSE_MS);
    }
  };
}
