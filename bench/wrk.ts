/**
 * wrk (Debian's package, a C load tool with its own event loop) as the read load: N keep-alive
 * connections, `GET /api/accounts/:id` of a random seeded account each time, in its own
 * process, so the server and not the load generator is the bottleneck. A Lua `done` hook prints
 * the figures as one JSON line, which this module parses (wrk's text output is for people).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// One wrk thread drives 32-512 connections at the ~10-20 k req/s two cores allow, and takes
// one core less from the servers being measured than two would.
const WRK_THREADS = 1;
// Longer than the slowest answer a loaded box gives; wrk counts a slower one as a timeout.
const WRK_TIMEOUT_S = 10;

const MARK = 'KEEL-WRK ';

function script(accounts: { lo: number; hi: number }): string {
  return `
local lo, hi = ${accounts.lo}, ${accounts.hi}
local n = 0
function setup(thread) n = n + 1; thread:set("seed", n) end
function init(args) math.randomseed(os.time() * 1000 + (seed or 0)) end
function request()
  return wrk.format("GET", "/api/accounts/" .. math.random(lo, hi))
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '${MARK}{"requests":%d,"durationUs":%d,"bytes":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
`;
}

export interface WrkResult {
  requests: number;
  seconds: number;
  /** Answers per second (any status; `non2xx` says how many were not 2xx or 3xx). */
  rps: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  non2xx: number;
  socketErrors: number;
  timeouts: number;
}

function wrkAvailable(): boolean {
  return (process.env.PATH ?? '')
    .split(path.delimiter)
    .some((dir) => dir && fs.existsSync(path.join(dir, 'wrk')));
}

/** Runs wrk for `seconds` against 127.0.0.1:port; resolves with its figures. */
function runWrk({
  port,
  connections,
  seconds,
  accounts,
  onStart,
}: {
  port: number;
  connections: number;
  seconds: number;
  accounts: { lo: number; hi: number };
  /** Called with wrk's pid once it runs (its CPU is measured apart from the servers'). */
  onStart?: (pid: number) => void;
}): Promise<WrkResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-wrk-'));
  const lua = path.join(dir, 'reads.lua');
  fs.writeFileSync(lua, script(accounts));
  const args = [
    `-t${WRK_THREADS}`,
    `-c${connections}`,
    `-d${seconds}s`,
    `--timeout`,
    `${WRK_TIMEOUT_S}s`,
    '-s',
    lua,
    `http://127.0.0.1:${port}/`,
  ];
  return new Promise<WrkResult>((resolve, reject) => {
    const child = execFile(
      'wrk',
      args,
      { encoding: 'utf8', timeout: (seconds + 30) * 1000 },
      (err, stdout, stderr) => {
        fs.rmSync(dir, { recursive: true, force: true });
        if (err) return reject(new Error(`wrk failed: ${err.message}\n${stderr}`));
        const line = stdout.split('\n').find((l) => l.startsWith(MARK));
        if (!line) return reject(new Error(`wrk printed no figures:\n${stdout}\n${stderr}`));
        const r = JSON.parse(line.slice(MARK.length)) as Record<string, number>;
        const us = (k: string) => (r[k] ?? 0) / 1000;
        const secs = (r.durationUs ?? 0) / 1e6;
        resolve({
          requests: r.requests ?? 0,
          seconds: secs,
          rps: secs > 0 ? (r.requests ?? 0) / secs : 0,
          latencyMs: { p50: us('p50'), p90: us('p90'), p99: us('p99'), max: us('max') },
          non2xx: r.status ?? 0,
          socketErrors: (r.connect ?? 0) + (r.read ?? 0) + (r.write ?? 0),
          timeouts: r.timeout ?? 0,
        });
      },
    );
    if (child.pid) onStart?.(child.pid);
  });
}

export { runWrk, wrkAvailable };
