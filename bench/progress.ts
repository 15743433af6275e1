/**
 * One status line per second while a load runs: phase, time, answers per second by outcome,
 * the last second's p99 and the workers' RSS. On a terminal the line rewrites itself; in a log
 * (CI, a pipe) every fifth one is printed.
 */
import { setInterval, clearInterval } from 'node:timers';
import { latencyFigures } from './stats';
import type { Load } from './load';
import type { Cleanup } from './types';
import { readProc } from './sampler';

function startProgress({
  label,
  load,
  pids,
  phase,
}: {
  label: string;
  load: Pick<Load, 'recorder' | 'elapsed'>;
  pids: () => number[];
  phase: () => string;
}) {
  const tty = Boolean(process.stdout.isTTY);
  let seen = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    ticks += 1;
    const view = load.recorder.view();
    const lat: number[] = [];
    let ok = 0;
    let bad = 0;
    let sock = 0;
    for (let i = seen; i < view.n; i++) {
      const s = view.status[i]!;
      if (s === 0) sock += 1;
      else if (s >= 200 && s < 300) ok += 1;
      else bad += 1;
      if (s !== 0) lat.push(view.ms[i]!);
    }
    seen = view.n;
    const p99 = latencyFigures(lat).p99;
    const rss = pids()
      .map((pid) => readProc(pid))
      .filter((p) => p !== null)
      .map((p) => (p.rssKb / 1024).toFixed(0))
      .join('/');
    const line =
      `[${label}] ${phase().padEnd(10)} ${(load.elapsed() / 1000).toFixed(0).padStart(3)} s  ` +
      `2xx/s ${String(ok).padStart(5)}  non-2xx ${String(bad).padStart(4)}  sock ${String(sock).padStart(3)}  ` +
      `p99 ${p99 === null ? '   -' : p99.toFixed(1).padStart(6)} ms  RSS ${rss} MB`;
    if (tty) process.stdout.write(`\r${line}\x1b[K`);
    else if (ticks % 5 === 0) process.stdout.write(`${line}\n`);
  }, 1000);
  let stopped = false;
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      if (tty) process.stdout.write('\n');
    },
  };
}

/**
 * The progress line for `load`, and stopping both registered as an undo: the first to go on
 * Ctrl-C, as a server under load drains slowly. The returned function stops them now.
 */
function watchLoad({
  cleanup,
  load,
  ...line
}: Parameters<typeof startProgress>[0] & { cleanup: Cleanup; load: Load }) {
  const progress = startProgress({ ...line, load });
  return cleanup.add('stop load', async () => {
    progress.stop();
    await load.stop();
  });
}

export { startProgress, watchLoad };
