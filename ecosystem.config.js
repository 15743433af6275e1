'use strict';
/**
 * PM2 ecosystem: the apps are defined, and every variable parsed, by the compiled config module
 * (src/config/pm2-apps.ts), so a bad value here is the same one-line error a worker prints.
 * Settings come from the environment of the `pm2 start` / `pm2-runtime` call.
 */
const path = require('node:path');

let pm2Apps;
try {
  ({ pm2Apps } = require(path.join(__dirname, 'dist', 'config', 'pm2-apps.js')));
} catch (err) {
  if (err.code !== 'MODULE_NOT_FOUND') throw err;
  throw new Error('keel: dist/ is missing: run `npm run build` (or `npm run setup`) first');
}
try {
  module.exports = pm2Apps(process.env, __dirname);
} catch (err) {
  if (err.name !== 'ConfigError') throw err;
  // PM2 would print "malformated" and a stack, and pm2-runtime would exit 0: one line and 78
  // (EX_CONFIG) instead, as a worker does. Writes to stderr are synchronous on Linux.
  process.stderr.write(`keel: ${err.message}\n`);
  process.exit(err.exitCode);
}
