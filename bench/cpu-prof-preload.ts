/**
 * Preloaded with NODE_OPTIONS=--require by `npm run bench -- --profile` (Node 20 refuses
 * --cpu-prof in NODE_OPTIONS, and PM2 hands its workers their environment, not our flags).
 * Profiles this process with the in-process inspector and writes
 * $KEEL_BENCH_PROF_DIR/<pid>.cpuprofile when it exits. The pm2 CLI itself is skipped.
 *
 * With KEEL_BENCH_PROF_KIND=alloc (`--profile --alloc`) it samples allocations instead, from the
 * first HTTP request on (module loading and boot are not what a request costs), counting the
 * objects the garbage collector has already taken too (V8 leaves those out by default: what a
 * request allocates, not what survives, is what the young generation pays for); it writes
 * <pid>.heapprofile.
 */
import fs from 'node:fs';
import http from 'node:http';
import inspector from 'node:inspector';
import path from 'node:path';

const dir = process.env.KEEL_BENCH_PROF_DIR;
const isPm2Cli = /[/\\]pm2[/\\]bin[/\\]pm2$/.test(process.argv[1] ?? '');
const alloc = process.env.KEEL_BENCH_PROF_KIND === 'alloc';

/** Runs `start` once, at this process's first HTTP request. */
function atFirstRequest(start: () => void): void {
  const emit = http.Server.prototype.emit;
  http.Server.prototype.emit = function (
    this: http.Server,
    event: string | symbol,
    ...rest: unknown[]
  ) {
    if (event === 'request') {
      http.Server.prototype.emit = emit;
      start();
    }
    return (emit as (e: string | symbol, ...a: unknown[]) => boolean).call(this, event, ...rest);
  } as typeof emit;
}

if (dir && !isPm2Cli) {
  const session = new inspector.Session();
  session.connect();
  let started = false;
  if (alloc) {
    session.post('HeapProfiler.enable');
    atFirstRequest(() => {
      started = true;
      session.post('HeapProfiler.startSampling', {
        samplingInterval: 1024,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
    });
  } else {
    session.post('Profiler.enable');
    session.post('Profiler.start');
    started = true;
  }
  let written = false;
  process.on('exit', () => {
    if (written || !started) return;
    written = true;
    // A same-thread inspector session answers synchronously, so this completes inside 'exit'.
    if (alloc) {
      session.post('HeapProfiler.stopSampling', (err, result) => {
        if (!err) {
          fs.writeFileSync(
            path.join(dir, `${process.pid}.heapprofile`),
            JSON.stringify(result.profile),
          );
        }
      });
      return;
    }
    session.post('Profiler.stop', (err, result) => {
      if (!err) {
        fs.writeFileSync(
          path.join(dir, `${process.pid}.cpuprofile`),
          JSON.stringify(result.profile),
        );
      }
    });
  });
}
