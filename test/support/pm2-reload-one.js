'use strict';
/**
 * `node pm2-reload-one.js <pm_id>`: `pm2 reload <pm_id> --update-env` (one worker, with the
 * caller's environment), through PM2's API with the id as a number.
 *
 * The CLI cannot reload one worker of a `wait_ready` app as PM2 means to: it hands the daemon the
 * id as the string it was given, and PM2 7.0.4's reload (lib/God/Reload.js, hardReload) matches
 * the new worker's `ready` message with `packet.process.pm_id === id`, a number against that
 * string. The `ready` is never matched, and the old worker is stopped only at listen_timeout
 * (READY_WAIT_MS + 10 s), ready or not. `pm2 reload web` is not affected (ids looked up by name
 * are numbers), and neither is this script.
 */
const pm2 = require('pm2');

const id = Number(process.argv[2]);
if (!Number.isInteger(id) || id < 0) {
  process.stderr.write(
    `usage: pm2-reload-one.js <pm_id>, not ${JSON.stringify(process.argv[2])}\n`,
  );
  process.exit(2);
}
pm2.connect((connectErr) => {
  if (connectErr) {
    process.stderr.write(`pm2 connect: ${connectErr.message}\n`);
    process.exit(1);
  }
  pm2.reload(id, { updateEnv: true }, (err) => {
    pm2.disconnect();
    if (err) {
      process.stderr.write(`pm2 reload ${id}: ${err.message ?? String(err)}\n`);
      process.exitCode = 1;
    }
  });
});
