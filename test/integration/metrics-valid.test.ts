/**
 * Every /metrics answer is valid text exposition: checked with a strict parser and with
 * `promtool check metrics`, on a real worker's scrape over HTTP and on a machine-wide scrape
 * whose siblings carry NaN and infinities across the JSON hop.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import client from 'prom-client';
import { createLogger } from '../../src/logger';
import { createDbStats } from '../../src/metrics/db-stats';
import { createWorkerMetrics } from '../../src/metrics/prometheus';
import { createSiblingMetrics, type SiblingMetrics } from '../../src/metrics/siblings';
import { needs } from '../support/prereqs';
import { parseStrict, promtoolCheck, type StrictSample } from '../support/exposition-check';
import { startTestPostgres, type TestPostgres } from '../support/postgres';
import { startTestWorker, type TestWorker } from '../support/worker';

// Keel's own families; lint findings may only name prom-client's defaults.
const KEEL_METRIC = /^(keel_|http_request)/;

let pg: TestPostgres;
let w: TestWorker;
let dir: string;
const siblings: SiblingMetrics[] = [];

beforeAll(async () => {
  pg = await startTestPostgres();
  w = await startTestWorker(await pg.createDatabase());
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-metrics-valid-'));
});

afterAll(async () => {
  for (const s of siblings) await s.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  await w?.stop();
  await pg?.destroy();
});

function expectValid(text: string): StrictSample[] {
  const samples = parseStrict(text);
  const check = promtoolCheck(text);
  expect({ status: check.status, output: check.output }).toEqual({
    status: check.status === 3 ? 3 : 0,
    output: check.output,
  });
  expect(check.findings.filter((f) => KEEL_METRIC.test(f.metric))).toEqual([]);
  return samples;
}

needs('promtool')(
  'a worker scrape over HTTP is valid for a strict parser and for promtool',
  async () => {
    await fetch(`${w.base}/api/accounts/1`);
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${w.base}/metrics`);
      expect(res.status).toBe(200);
      const samples = expectValid(await res.text());
      expect(samples.some((s) => s.name === 'keel_db_connections_open')).toBe(true);
    }
  },
);

test('NaN and infinities of every worker survive the machine-wide merge exactly', async () => {
  const logger = createLogger({ level: 'error', base: {} });
  const make = async (worker: string, pid: number) => {
    const { registry } = createWorkerMetrics({ stats: createDbStats(), worker, inFlight: () => 0 });
    const g = new client.Gauge({
      name: 'test_odd_values',
      help: 'values JSON cannot carry',
      labelNames: ['kind'],
      registers: [registry],
    });
    g.set({ kind: 'nan' }, NaN);
    g.set({ kind: 'pinf' }, Infinity);
    g.set({ kind: 'ninf' }, -Infinity);
    g.set({ kind: 'tiny' }, 1e-300);
    const s = await createSiblingMetrics({ dir, worker, registry, logger, pid });
    siblings.push(s);
    return s;
  };
  const a = await make('0', 4101);
  await make('1', 4102);
  const samples = expectValid(await a.render());
  for (const worker of ['0', '1']) {
    const odd = (kind: string) =>
      samples.find(
        (s) => s.name === 'test_odd_values' && s.labels.kind === kind && s.labels.worker === worker,
      )?.raw;
    expect([odd('nan'), odd('pinf'), odd('ninf'), odd('tiny')]).toEqual([
      'NaN',
      '+Inf',
      '-Inf',
      '1e-300',
    ]);
  }
  expect(samples.filter((s) => s.name === 'keel_metrics_worker_up').map((s) => s.value)).toEqual([
    1, 1,
  ]);
});

needs('promtool')(
  'what promtool finds in prom-client defaults (reported, not Keel names)',
  async () => {
    const check = promtoolCheck(await (await fetch(`${w.base}/metrics`)).text());
    expect(check.findings.every((f) => !KEEL_METRIC.test(f.metric))).toBe(true);
    // prom-client 15's gauges named *_total; anything new here belongs in docs/metrics.md's list.
    expect(check.findings.map((f) => f.metric).sort()).toEqual([
      'nodejs_active_handles_total',
      'nodejs_active_requests_total',
      'nodejs_active_resources_total',
    ]);
  },
);

test('the strict parser refuses what prom-client 15 writes for NaN without the fix', () => {
  expect(() => parseStrict('# TYPE x gauge\nx Nan\n')).toThrow(/not a valid sample line/);
  expect(parseStrict('# TYPE x gauge\nx NaN\n')[0]!.raw).toBe('NaN');
});
