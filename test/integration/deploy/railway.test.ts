/**
 * .railway/railway.ts, evaluated as the Railway CLI does (a child `node`, which strips the types)
 * and validated offline with the `railway` SDK's validateGraph: the settings a deploy relies on.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../../src/config/config';
import { ROOT } from '../../support/pm2';

const RUNNER = path.join(ROOT, 'test', 'support', 'railway-graph.mjs');

function evaluate(...args: string[]) {
  const out = execFileSync(process.execPath, ['--experimental-strip-types', RUNNER, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '' },
    timeout: 30000,
  });
  return JSON.parse(out) as {
    graph: { resources: any[]; edges: any[] };
    errors: string[];
    web: { kill_timeout: number; instances: number; apps: number };
  };
}

const { graph, errors, web } = evaluate();
const keel = graph.resources.find((r) => r.address === 'service.keel');
const vars: Record<string, string> = Object.fromEntries(
  Object.entries(keel.variables as Record<string, { type: string; value?: string }>)
    .filter(([, v]) => v.type === 'literal')
    .map(([k, v]) => [k, v.value ?? '']),
);

test('the graph validates with the SDK, and a dangling reference would not', () => {
  expect(errors).toEqual([]);
  expect(graph.resources.map((r) => r.address).sort()).toEqual([
    'database.Postgres',
    'service.keel',
  ]);
  expect(evaluate('--dangling').errors).toEqual([
    'Edge references missing target: database.Nowhere',
  ]);
});

test('start is pm2-runtime itself with the ecosystem, and that binary is there', () => {
  const [bin, file] = (keel.deploy.startCommand as string).split(' ');
  expect(bin).toBe('node_modules/.bin/pm2-runtime');
  expect(file).toBe('ecosystem.config.js');
  expect(fs.existsSync(path.join(ROOT, bin as string))).toBe(true);
  // The ecosystem with these variables runs only `web` (no embedded database) with WEB_CONCURRENCY workers.
  expect(web.apps).toBe(1);
  expect(web.instances).toBe(Number(vars.WEB_CONCURRENCY));
});

test('health check /readyz; pre-deploy migrates with the unpooled URL', () => {
  expect(keel.deploy.healthcheckPath).toBe('/readyz');
  expect(keel.deploy.preDeployCommand).toEqual(['node dist/cli/migrate.js']);
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  expect(pkg.scripts.migrate).toBe('node dist/cli/migrate.js');
  expect(keel.variables.DATABASE_UNPOOLED_URL).toEqual({
    type: 'reference',
    resource: 'database.Postgres',
    output: 'DATABASE_URL',
  });
  // The migration CLI reads DATABASE_UNPOOLED_URL when no DATABASE_MIGRATION_URL is given.
  const config = loadConfig({
    ...vars,
    DATABASE_URL: 'postgres://u:p@pgbouncer.railway.internal:6432/railway',
    DATABASE_UNPOOLED_URL: 'postgres://u:p@postgres.railway.internal:5432/railway',
  });
  expect(config.db.migrationUrl).toContain('postgres.railway.internal:5432');
});

test('draining covers PM2 kill_timeout, overlap a request timeout, and the variables agree', () => {
  const config = loadConfig({
    ...vars,
    DATABASE_URL: 'postgres://u:p@db/railway',
    RAILWAY_ENVIRONMENT: 'production',
    PM2_KILL_TIMEOUT_MS: String(web.kill_timeout),
  });
  expect(keel.deploy.drainingSeconds * 1000).toBeGreaterThanOrEqual(web.kill_timeout);
  expect(web.kill_timeout).toBeGreaterThan(config.shutdownTimeoutMs);
  expect(keel.deploy.overlapSeconds * 1000).toBeGreaterThanOrEqual(config.requestTimeoutMs);
  expect(config.platform.drainingS).toBe(keel.deploy.drainingSeconds);
  expect(config.platform.overlapS).toBe(keel.deploy.overlapSeconds);
  expect(config.platform.replicas).toBe(keel.deploy.numReplicas);
  expect(keel.deploy.numReplicas).toBeGreaterThanOrEqual(2);
  expect(keel.deploy.restartPolicyType).toBe('ON_FAILURE');
  expect(vars.KEEL_REQUIRE_DATABASE_URL).toBe('1');
  // Railway's private network is IPv6: Prometheus scrapes each replica there.
  expect(vars.HOST).toBe('::');
});
