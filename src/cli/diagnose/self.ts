/** Keel itself: the driver patch applied, timeouts that fit together, Node, CPUs vs workers. */
import path from 'node:path';
import type { Config } from '../../config/config';
import {
  DRIVER_PATCH_NAME,
  DRIVER_VERSION,
  patchAdditions,
  unpatchedDriverFiles,
} from '../../db/driver-patch';
import { check, worst, type Check, type Status } from './report';

export interface SelfDeps {
  /** The project root (holds package.json, patches/ and node_modules/). */
  root: string;
  readFile(file: string): Promise<string>;
  nodeVersion: string;
  /** os.availableParallelism() */
  cpus: number;
  /** PM2's kill_timeout for `web` as the ecosystem computes it (null without the file). */
  killTimeoutMs: number | null;
}

/** The worker's own start-up check (src/db/driver-patch.ts), run against this checkout. */
async function driverPatch(deps: SelfDeps): Promise<Check> {
  const name = DRIVER_PATCH_NAME;
  const patchFile = path.join(deps.root, 'patches', name);
  const driver = path.join(deps.root, 'node_modules', 'postgres');
  const installed = JSON.parse(await deps.readFile(path.join(driver, 'package.json'))) as {
    version: string;
  };
  const wanted = DRIVER_VERSION;
  if (installed.version !== wanted)
    return check(
      'keel.driver_patch',
      'fail',
      installed.version,
      null,
      `postgres.js ${installed.version} is installed; the patch is for ${wanted}`,
      'npm ci',
    );
  const lines = [...patchAdditions(await deps.readFile(patchFile)).values()].flat().length;
  const missing = unpatchedDriverFiles(patchFile, path.join(driver, 'cjs', 'src', 'index.js')).map(
    (f) => `node_modules/postgres/${f}`,
  );
  if (missing.length)
    return check(
      'keel.driver_patch',
      'fail',
      `${missing.length} files unpatched`,
      null,
      `patches/${name} is not applied to ${missing.join(', ')}`,
      'npm ci (its postinstall runs patch-package); do not install with --ignore-scripts',
      { missing },
    );
  return check(
    'keel.driver_patch',
    'ok',
    `${lines} lines`,
    null,
    `patches/${name} is applied (every added line found in node_modules/postgres)`,
  );
}

function timeouts(config: Config, killTimeoutMs: number | null): Check {
  const problems: { status: Status; text: string }[] = [];
  const kill = config.platform.killTimeoutMs ?? killTimeoutMs;
  const p = config.platform;
  if (kill !== null && config.shutdownTimeoutMs >= kill)
    problems.push({
      status: 'fail',
      text: `SHUTDOWN_TIMEOUT_MS=${config.shutdownTimeoutMs} is not below PM2's kill_timeout ${kill} ms`,
    });
  if (config.shutdownTimeoutMs < config.requestTimeoutMs)
    problems.push({
      status: 'warn',
      text: `SHUTDOWN_TIMEOUT_MS=${config.shutdownTimeoutMs} is below REQUEST_TIMEOUT_MS=${config.requestTimeoutMs}: a drain can cut a request short`,
    });
  if (p.railway && kill !== null && (p.drainingS ?? 0) * 1000 < kill)
    problems.push({
      status: 'fail',
      text: `RAILWAY_DEPLOYMENT_DRAINING_SECONDS=${p.drainingS ?? 0} is below kill_timeout ${kill / 1000} s: Railway kills the old deployment mid-drain`,
    });
  if (config.keepAliveTimeoutMs <= 60000)
    problems.push({
      status: 'warn',
      text: `KEEP_ALIVE_TIMEOUT_MS=${config.keepAliveTimeoutMs} is not above the edge's 60 s: the edge may reuse a socket Keel just closed`,
    });
  if (config.db.statementTimeoutMs >= config.db.retryBudgetMs)
    problems.push({
      status: 'warn',
      text: `DB_STATEMENT_TIMEOUT_MS=${config.db.statementTimeoutMs} is not below DB_RETRY_BUDGET_MS=${config.db.retryBudgetMs}: a stalled query uses the whole budget`,
    });
  if (config.db.keepAliveS >= config.db.idleCutoffS)
    problems.push({
      status: 'warn',
      text: `DB_KEEPALIVE_S=${config.db.keepAliveS} is not below DB_IDLE_CUTOFF_S=${config.db.idleCutoffS}: keepalive cannot find a cut connection in time`,
    });
  const values = {
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    killTimeoutMs: kill,
    requestTimeoutMs: config.requestTimeoutMs,
    keepAliveTimeoutMs: config.keepAliveTimeoutMs,
    drainingS: p.drainingS,
    statementTimeoutMs: config.db.statementTimeoutMs,
    retryBudgetMs: config.db.retryBudgetMs,
  };
  if (!problems.length)
    return check(
      'keel.timeouts',
      'ok',
      config.shutdownTimeoutMs,
      'ms',
      `drain ${config.shutdownTimeoutMs} ms ${kill === null ? '(no PM2 kill_timeout known)' : `< kill_timeout ${kill} ms`}${p.railway ? ` <= draining ${p.drainingS} s` : ''}; requests ${config.requestTimeoutMs} ms; keep-alive ${config.keepAliveTimeoutMs} ms > 60 s`,
      null,
      values,
    );
  return check(
    'keel.timeouts',
    worst(problems.map((x) => x.status)),
    problems.length,
    null,
    problems.map((x) => x.text).join('; '),
    'fix the variables named',
    values,
  );
}

const parts = (v: string): number[] => v.split('.').map((n) => Number(n) || 0);
function atLeast(v: number[], w: number[]): boolean {
  for (let i = 0; i < 3; i++) if ((v[i] ?? 0) !== (w[i] ?? 0)) return (v[i] ?? 0) > (w[i] ?? 0);
  return true;
}

/** The engines ranges Keel uses: `>=X.Y.Z`, `^X.Y.Z`, `X.Y.Z`, joined by `||`. */
export function satisfies(version: string, range: string): boolean {
  const v = parts(version);
  return range.split('||').some((alt) => {
    const m = /^\s*(>=|\^)?\s*v?(\d+(?:\.\d+){0,2})\s*$/.exec(alt);
    if (!m) return false;
    const w = parts(m[2]!);
    if (m[1] === '>=') return atLeast(v, w);
    if (m[1] === '^') return v[0] === w[0] && atLeast(v, w);
    return w.every((n, i) => v[i] === n);
  });
}

async function nodeVersion(deps: SelfDeps): Promise<Check> {
  const pkg = JSON.parse(await deps.readFile(path.join(deps.root, 'package.json'))) as {
    engines?: { node?: string };
  };
  const range = pkg.engines?.node ?? '*';
  return range === '*' || satisfies(deps.nodeVersion, range)
    ? check(
        'keel.node',
        'ok',
        deps.nodeVersion,
        null,
        `Node ${deps.nodeVersion} (package.json wants ${range})`,
      )
    : check(
        'keel.node',
        'fail',
        deps.nodeVersion,
        null,
        `Node ${deps.nodeVersion} is not in ${range} (package.json engines)`,
        'use a supported Node (the Dockerfile / nixpacks NODE_VERSION)',
      );
}

/** CPUs the cgroup lets this container use: cpu.max (v2) or cfs_quota_us / cfs_period_us (v1). */
export function cgroupCpus(
  v2: string | null,
  v1Quota: string | null,
  v1Period: string | null,
): number | null {
  const m = v2 ? /^(\d+|max)\s+(\d+)/.exec(v2.trim()) : null;
  if (m) return m[1] === 'max' ? null : Number(m[1]) / Number(m[2]);
  const q = Number(v1Quota);
  const per = Number(v1Period);
  return q > 0 && per > 0 ? q / per : null;
}

async function cpus(config: Config, deps: SelfDeps): Promise<Check> {
  const read = (f: string) => deps.readFile(f).catch(() => null);
  const quota = cgroupCpus(
    await read('/sys/fs/cgroup/cpu.max'),
    await read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'),
    await read('/sys/fs/cgroup/cpu/cpu.cfs_period_us'),
  );
  const usable = quota === null ? deps.cpus : Math.min(deps.cpus, quota);
  const data = { instances: config.instances, availableParallelism: deps.cpus, cgroupQuota: quota };
  const where =
    quota === null
      ? `${deps.cpus} CPUs (no cgroup quota)`
      : `a cgroup quota of ${quota} CPUs (the host shows ${deps.cpus})`;
  if (config.instances > Math.max(1, Math.ceil(usable)))
    return check(
      'keel.cpus',
      'warn',
      config.instances,
      null,
      `WEB_CONCURRENCY=${config.instances} workers on ${where}: they compete for CPU and each holds its own pool`,
      `set WEB_CONCURRENCY=${Math.max(1, Math.ceil(usable))}`,
      data,
    );
  return check(
    'keel.cpus',
    'ok',
    config.instances,
    null,
    `${config.instances} workers on ${where}`,
    null,
    data,
  );
}

export async function checkSelf(config: Config, deps: SelfDeps): Promise<Check[]> {
  return [
    await driverPatch(deps),
    timeouts(config, deps.killTimeoutMs),
    await nodeVersion(deps),
    await cpus(config, deps),
  ];
}
