/**
 * The machine-wide /metrics between workers, in one process: two registries meet in a shared
 * directory over Unix sockets. A stale socket file is cleaned up, a hung sibling costs at most
 * the deadline, and of two workers with the same label the newer one speaks.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import client from 'prom-client';
import { createLogger } from '../../src/logger';
import { createSiblingMetrics, type SiblingMetrics } from '../../src/metrics/siblings';
import { parseExposition, valueOf } from '../support/metrics';
import { Writable } from 'node:stream';

let dir: string;
const opened: Array<{ close(): Promise<void> | void }> = [];
const logs: Array<Record<string, unknown>> = [];
const logger = createLogger({
  level: 'info',
  base: {},
  stream: new Writable({
    write(c: Buffer, _e, cb) {
      logs.push(JSON.parse(c.toString()) as Record<string, unknown>);
      cb();
    },
  }),
});

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-siblings-'));
});

afterEach(async () => {
  for (let o = opened.pop(); o; o = opened.pop()) await o.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function registry(worker: string, requests: number): client.Registry {
  const r = new client.Registry();
  r.setDefaultLabels({ worker });
  const c = new client.Counter({ name: 'demo_requests_total', help: 'demo', registers: [r] });
  c.inc(requests);
  new client.Histogram({
    name: 'demo_seconds',
    help: 'demo',
    buckets: [1],
    registers: [r],
  }).observe(0.5);
  return r;
}

async function sibling(worker: string, requests: number, pid: number, timeoutMs = 1000) {
  const s = await createSiblingMetrics({
    dir,
    worker,
    registry: registry(worker, requests),
    logger,
    timeoutMs,
    pid,
  });
  opened.push(s);
  return s;
}

async function scrape(s: SiblingMetrics) {
  return parseExposition(await s.render());
}

test('each worker renders every worker, one family per metric, worker label on every series', async () => {
  const a = await sibling('0', 3, 1001);
  const b = await sibling('1', 5, 1002);
  for (const s of [a, b]) {
    const text = await s.render();
    const samples = parseExposition(text);
    expect(valueOf(samples, 'demo_requests_total', { worker: '0' })).toBe(3);
    expect(valueOf(samples, 'demo_requests_total', { worker: '1' })).toBe(5);
    expect(valueOf(samples, 'demo_seconds_count', { worker: '1' })).toBe(1);
    expect(valueOf(samples, 'keel_metrics_worker_up', { worker: '0' })).toBe(1);
    expect(valueOf(samples, 'keel_metrics_worker_up', { worker: '1' })).toBe(1);
    expect(text.match(/^# TYPE demo_requests_total counter$/gm)).toHaveLength(1);
    expect(samples.every((x) => x.labels.worker !== undefined)).toBe(true);
  }
  expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
});

test('a stale socket file is skipped and removed; a hung sibling costs at most the deadline', async () => {
  const a = await sibling('0', 1, 2001, 300);
  // A file where no one listens (a worker that died without cleaning up).
  fs.writeFileSync(path.join(dir, '5-99999.sock'), '');
  // A sibling that accepts and never answers.
  const hung = net.createServer(() => undefined);
  await new Promise<void>((r) => hung.listen(path.join(dir, '7-4242.sock'), r));
  opened.push({ close: () => new Promise<void>((r) => hung.close(() => r())) });
  const sockets: net.Socket[] = [];
  hung.on('connection', (s) => sockets.push(s));
  opened.push({ close: () => sockets.forEach((s) => s.destroy()) });

  const started = Date.now();
  const samples = await scrape(a);
  expect(Date.now() - started).toBeLessThan(1000);
  expect(valueOf(samples, 'keel_metrics_worker_up', { worker: '7' })).toBe(0);
  expect(valueOf(samples, 'keel_metrics_worker_up', { worker: '5' })).toBeUndefined();
  expect(valueOf(samples, 'demo_requests_total', { worker: '0' })).toBe(1);
  expect(fs.existsSync(path.join(dir, '5-99999.sock'))).toBe(false);
  expect(
    logs.some((l) => l.msg === 'sibling metrics unavailable' && l.sibling === '7-4242.sock'),
  ).toBe(true);
});

test('two processes with the same worker label (a reload): the newer one speaks for it', async () => {
  const old = await sibling('0', 100, 3001);
  await new Promise((r) => setTimeout(r, 5));
  const fresh = await sibling('0', 1, 3002);
  const other = await sibling('1', 2, 3003);
  for (const s of [old, fresh, other]) {
    const samples = await scrape(s);
    expect(valueOf(samples, 'demo_requests_total', { worker: '0' })).toBe(1);
    expect(valueOf(samples, 'demo_requests_total', { worker: '1' })).toBe(2);
  }
});
