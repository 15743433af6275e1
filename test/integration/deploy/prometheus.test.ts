/**
 * deploy/prometheus: both scrape configs and the alert rules pass promtool, the rules' own unit
 * tests pass, and every metric the rules name is one a real Keel under PM2 exports.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseExposition } from '../../support/metrics';
import { needs } from '../../support/prereqs';
import { ROOT, startWebCluster, type WebCluster } from '../../support/pm2';

const DIR = path.join(ROOT, 'deploy', 'prometheus');
const promtool = (...args: string[]) =>
  execFileSync('promtool', args, { cwd: DIR, encoding: 'utf8', timeout: 60000 });

needs('promtool').each(['prometheus.yml', 'prometheus-railway.yml'])(
  'promtool check config %s (rules included)',
  (file) => {
    expect(promtool('check', 'config', file)).toMatch(/SUCCESS: 8 rules found/);
  },
);

needs('promtool')('promtool check rules, and the rules unit tests', () => {
  expect(promtool('check', 'rules', 'keel.rules.yml')).toMatch(/SUCCESS: 8 rules found/);
  expect(promtool('test', 'rules', 'keel.rules.test.yml')).toMatch(/SUCCESS/);
});

describe('against a running Keel', () => {
  let cluster: WebCluster;
  beforeAll(async () => {
    cluster = await startWebCluster({ DB_POOL_MAX: '4' });
  });
  afterAll(async () => {
    await cluster?.pm2.kill();
    await cluster?.pg.destroy();
  });

  test('every metric an alert names is in the scrape, with the labels the rules group by', async () => {
    // One answer, so http_requests_total has a series.
    expect((await fetch(`${cluster.base}/api/accounts/1`)).status).toBe(404);
    const text = await (await fetch(`${cluster.base}/metrics`)).text();
    const samples = parseExposition(text);
    const exported = new Set(samples.map((s) => s.name));
    const rules = fs.readFileSync(path.join(DIR, 'keel.rules.yml'), 'utf8');
    const named = new Set(
      [...rules.matchAll(/^\s+expr: [\s\S]*?(?=\n\s+(?:for|labels):)/gm)].flatMap((m) =>
        [...m[0].matchAll(/\b(keel_[a-z_]+|http_requests_total)\b/g)].map((n) => n[1]),
      ),
    );
    expect([...named].sort()).toEqual([
      'http_requests_total',
      'keel_db_breaker_open',
      'keel_db_connect_attempts_total',
      'keel_db_connections_open',
      'keel_db_pool_max',
      'keel_db_retry_outcomes_total',
      'keel_db_role_changes_total',
      'keel_metrics_worker_up',
    ]);
    for (const name of named) expect([name, exported.has(name as string)]).toEqual([name, true]);
    // Both workers answer for the machine, each with its pool size and its own worker label.
    const pool = samples.filter((s) => s.name === 'keel_db_pool_max');
    expect(pool.map((s) => [s.labels.worker, s.value]).sort()).toEqual([
      ['0', 4],
      ['1', 4],
    ]);
    expect(samples.filter((s) => s.name === 'keel_metrics_worker_up').map((s) => s.value)).toEqual([
      1, 1,
    ]);
    expect(
      samples.find(
        (s) => s.name === 'keel_db_retry_outcomes_total' && s.labels.outcome === 'exhausted',
      ),
    ).toBeDefined();
    expect(
      samples.find((s) => s.name === 'http_requests_total' && s.labels.status === '404'),
    ).toBeDefined();
  });
});
