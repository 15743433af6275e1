/**
 * Memory and CPU of processes from /proc, sampled every 500 ms: the highest VmRSS seen, the
 * kernel's own high-water mark (VmHWM: the peak between samples too) and CPU time. Plus the
 * whole machine's busy share, to tell a saturated box from a slow server.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { setInterval, clearInterval } from 'node:timers';
import { processTable } from '../test/support/procfs';

const SAMPLE_MS = 500;

let clockTicks: number | null = null;
function ticksPerSecond(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** { rssKb, hwmKb, cpuS } of a live pid, or null. */
function readProc(pid: number): { rssKb: number; hwmKb: number; cpuS: number } | null {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) =>
      Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    // Fields after the command name (which may hold spaces): utime and stime are 14th and 15th.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuS = (Number(rest[11]) + Number(rest[12])) / ticksPerSecond();
    return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM'), cpuS };
  } catch {
    return null;
  }
}

/** Pids whose parent is `parent` (one scan of /proc). */
function childrenOf(parent: number): number[] {
  return processTable()
    .filter((p) => p.ppid === parent)
    .map((p) => p.pid);
}

/** Jiffies busy and total since boot, from the first line of /proc/stat. */
function machineCpu() {
  const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1);
  const n = fields.map(Number);
  const total = n.reduce((a, b) => a + b, 0);
  const idle = (n[3] ?? 0) + (n[4] ?? 0);
  return { busy: total - idle, total };
}

/** Samples `pids()` (re-read each time: a reload replaces workers) until `stop()`. */
export interface MemoryPeak {
  pid: number;
  peakRssKb: number;
  hwmKb: number;
}

function startSampler(pids: () => number[]) {
  const peaks = new Map<number, { peakRssKb: number; hwmKb: number }>();
  const sample = () => {
    for (const pid of pids()) {
      const p = readProc(pid);
      if (!p) continue;
      const seen = peaks.get(pid) ?? { peakRssKb: 0, hwmKb: 0 };
      seen.peakRssKb = Math.max(seen.peakRssKb, p.rssKb);
      seen.hwmKb = Math.max(seen.hwmKb, p.hwmKb);
      peaks.set(pid, seen);
    }
  };
  sample();
  const timer = setInterval(sample, SAMPLE_MS);
  return {
    stop(): MemoryPeak[] {
      clearInterval(timer);
      sample();
      return [...peaks].map(([pid, v]) => ({ pid, ...v }));
    },
  };
}

/**
 * CPU seconds per group of pids between `start` and `end()`, plus the machine: busy share of
 * its capacity and the CPU used by processes in none of the groups nor this one ("others":
 * whatever else runs on a shared box). `groups()` is read at both ends, so a process that
 * starts inside the window (a new backend) counts whole and one that ends counts nothing.
 */
/** Named groups of pids; `workers` is the one reported per pid. */
export type PidGroups = { workers: number[] } & Record<string, number[]>;

function cpuWindow<G extends PidGroups>(groups: () => G) {
  const read = () => {
    const g = groups();
    const cpu = new Map<number, number | null>();
    for (const pid of Object.values(g).flat()) cpu.set(pid, readProc(pid)?.cpuS ?? null);
    return { g, cpu, machine: machineCpu(), self: process.cpuUsage() };
  };
  const first = read();
  return {
    end() {
      const last = read();
      const bySum: Record<string, number> = {};
      let ours = 0;
      for (const name of Object.keys(last.g)) {
        const pids = new Set([...(first.g[name] ?? []), ...(last.g[name] ?? [])]);
        let sum = 0;
        for (const pid of pids) {
          const a = first.cpu.get(pid) ?? 0;
          const b = last.cpu.get(pid);
          if (b !== null && b !== undefined) sum += b - a;
        }
        bySum[name] = sum;
        ours += sum;
      }
      const hz = ticksPerSecond();
      const busyS = (last.machine.busy - first.machine.busy) / hz;
      const capacityS = (last.machine.total - first.machine.total) / hz;
      const selfS = (last.self.user + last.self.system - first.self.user - first.self.system) / 1e6;
      ours += selfS;
      return {
        groupsS: { ...bySum, loadgen: selfS } as Record<keyof G | 'loadgen', number>,
        perPid: last.g.workers.map((pid) => ({
          pid,
          cpuS: (last.cpu.get(pid) ?? 0) - (first.cpu.get(pid) ?? 0),
        })),
        machineBusy: capacityS > 0 ? busyS / capacityS : 0,
        othersShare: capacityS > 0 ? Math.max(0, busyS - ours) / capacityS : 0,
      };
    },
  };
}

/**
 * The box's CPU over time, every SAMPLE_MS: the share used by `groups()` plus this process
 * ("ours") and by everything else ("others": on a shared machine, other people's work).
 */
export interface CpuPoint {
  t: number;
  ours: number;
  others: number;
}

function startBoxSampler(groups: () => PidGroups, clock: () => number) {
  const points: CpuPoint[] = [];
  let window = cpuWindow(groups);
  const timer = setInterval(() => {
    const w = window.end();
    window = cpuWindow(groups);
    points.push({
      t: clock() / 1000,
      ours: Math.max(0, w.machineBusy - w.othersShare),
      others: w.othersShare,
    });
  }, SAMPLE_MS);
  return {
    stop() {
      clearInterval(timer);
      return points;
    },
  };
}

/**
 * The box sampler for a target under load: its workers are the PM2 daemon's children (also the
 * new ones mid-reload) or, without a daemon, its own pids; tools are ours (pm2 CLI).
 */
function startTargetBoxSampler(
  target: { daemonPid(): number | null; pids(): number[] },
  postgres: () => number[],
  clock: () => number,
) {
  const daemon = target.daemonPid();
  return startBoxSampler(
    () => ({
      workers: daemon ? childrenOf(daemon) : target.pids(),
      daemon: daemon ? [daemon] : [],
      postgres: postgres(),
      tools: childrenOf(process.pid),
    }),
    clock,
  );
}

export {
  startSampler,
  startBoxSampler,
  startTargetBoxSampler,
  cpuWindow,
  readProc,
  childrenOf,
  SAMPLE_MS,
};
