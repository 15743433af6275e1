/**
 * Preloaded with NODE_OPTIONS=--require by `npm run bench -- --profile` (Node 20 refuses
 * --cpu-prof in NODE_OPTIONS, and PM2 hands its workers their environment, not our flags).
 * Profiles this process with the in-process inspector and writes
 * $KEEL_BENCH_PROF_DIR/<pid>.cpuprofile when it exits. The pm2 CLI itself is skipped.
 */
import fs from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';

const dir = process.env.KEEL_BENCH_PROF_DIR;
const isPm2Cli = /[/\\]pm2[/\\]bin[/\\]pm2$/.test(process.argv[1] ?? '');

if (dir && !isPm2Cli) {
  const session = new inspector.Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.start');
  let written = false;
  process.on('exit', () => {
    if (written) return;
    written = true;
    // A same-thread inspector session answers synchronously, so this completes inside 'exit'.
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
