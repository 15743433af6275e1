/**
 * A machine-wide /metrics in PM2 cluster mode: the worker a scrape lands on asks every sibling
 * over its Unix socket, under one deadline (why not PM2's bus: docs/design/pm2.md).
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import client, {
  AggregatorRegistry,
  type MetricObjectWithValues,
  type MetricValue,
} from 'prom-client';
import type { Logger } from '../logger';
import { fixNaN, snapshotFromJson, snapshotToJson } from './exposition';

export interface SiblingMetricsDeps {
  /** Shared by all workers of this app on this machine, and by nothing else. */
  dir: string;
  worker: string;
  registry: client.Registry;
  logger: Logger;
  /** Deadline for the siblings' answers. */
  timeoutMs?: number;
  pid?: number;
  now?: () => number;
}

export interface SiblingMetrics {
  render(): Promise<string>;
  contentType: string;
  /** Stops answering siblings (the socket file goes with it). */
  close(): Promise<void>;
}

interface Snapshot {
  worker: string;
  pid: number;
  startedAt: number;
  metrics: Array<MetricObjectWithValues<MetricValue<string>>>;
}

// A healthy worker answers in milliseconds; one that cannot within a second is too stalled to
// serve traffic either, and Prometheus' default scrape timeout (10 s) is far away.
const DEFAULT_TIMEOUT_MS = 1000;
// A worker's registry is tens of kilobytes; anything far larger is not one.
const MAX_SNAPSHOT_BYTES = 8 * 1024 * 1024;
const SOCKET = /^(.+)-(\d+)\.sock$/;

export async function createSiblingMetrics(deps: SiblingMetricsDeps): Promise<SiblingMetrics> {
  const { dir, worker, registry, logger } = deps;
  const pid = deps.pid ?? process.pid;
  const timeoutMs = deps.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const startedAt = (deps.now ?? Date.now)();
  const own = `${worker}-${pid}.sock`;
  const socketPath = path.join(dir, own);

  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await fs.lstat(dir);
  if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid())) {
    throw new Error(`${dir} is not a directory of this user`);
  }
  await fs.chmod(dir, 0o700);
  await fs.rm(socketPath, { force: true }); // left by an earlier process with our pid

  const snapshot = async (): Promise<Snapshot> => ({
    worker,
    pid,
    startedAt,
    metrics: await registry.getMetricsAsJSON(),
  });

  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/snapshot') {
      res.writeHead(404).end();
      return;
    }
    snapshot().then(
      (s) => res.writeHead(200, { 'content-type': 'application/json' }).end(snapshotToJson(s)),
      () => res.writeHead(500).end(),
    );
  });
  // `exclusive`: in a cluster worker, listen here instead of asking the primary (PM2) to.
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path: socketPath, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.unref();

  async function siblings(): Promise<Array<{ worker: string; snapshot: Snapshot | null }>> {
    const names = (await fs.readdir(dir)).filter((n) => n !== own && SOCKET.test(n));
    const signal = AbortSignal.timeout(timeoutMs);
    return Promise.all(
      names.map(async (name) => {
        const file = path.join(dir, name);
        try {
          return { worker: SOCKET.exec(name)![1]!, snapshot: await fetchSnapshot(file, signal) };
        } catch (err) {
          const code = (err as { code?: string }).code;
          // Nobody listens there: a worker that is gone. Its file can go too.
          if (code === 'ECONNREFUSED' || code === 'ENOENT') {
            await fs.rm(file, { force: true });
            return { worker: '', snapshot: null };
          }
          logger.warn('sibling metrics unavailable', { sibling: name, error: code ?? String(err) });
          return { worker: SOCKET.exec(name)![1]!, snapshot: null };
        }
      }),
    );
  }

  return {
    contentType: registry.contentType,
    async render() {
      const answers = [{ worker, snapshot: await snapshot() }, ...(await siblings())];
      // One snapshot per worker label: during a reload the old and the new worker of an
      // instance overlap for a moment, and the new one speaks for it.
      const chosen = new Map<string, Snapshot>();
      for (const { snapshot: s } of answers) {
        if (!s) continue;
        const seen = chosen.get(s.worker);
        if (!seen || s.startedAt > seen.startedAt) chosen.set(s.worker, s);
      }
      const up = new Map<string, number>();
      for (const a of answers) if (a.worker) up.set(a.worker, chosen.has(a.worker) ? 1 : 0);
      const upMetric = {
        name: 'keel_metrics_worker_up',
        help: 'Whether the worker answered for this machine-wide scrape within the deadline',
        type: 'gauge',
        aggregator: 'first',
        values: [...up].map(([w, v]) => ({ labels: { worker: w }, value: v })),
      } as unknown as MetricObjectWithValues<MetricValue<string>>;
      // Every series carries its worker label, so "first" keeps each one as it is.
      const merged = AggregatorRegistry.aggregate([
        ...[...chosen.values()].map((s) => s.metrics.map((m) => ({ ...m, aggregator: 'first' }))),
        [upMetric],
      ] as Parameters<typeof AggregatorRegistry.aggregate>[0]);
      return fixNaN(await merged.metrics());
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
      }),
  };
}

function fetchSnapshot(socketPath: string, signal: AbortSignal): Promise<Snapshot> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: '/snapshot', agent: false, signal }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`status ${res.statusCode}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_SNAPSHOT_BYTES) req.destroy(new Error('snapshot too large'));
        else chunks.push(c);
      });
      res.on('end', () => {
        try {
          const s = snapshotFromJson(Buffer.concat(chunks).toString('utf8')) as Snapshot;
          if (typeof s.worker !== 'string' || !Array.isArray(s.metrics)) throw new Error('bad');
          resolve(s);
        } catch {
          reject(new Error('malformed snapshot'));
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}
