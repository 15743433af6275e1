/** The boot-time budget check with injected limits: what refuses, what only warns, and the line. */
import { PassThrough } from 'node:stream';
import { budgetInput } from '../../../src/config/budget';
import { loadConfig } from '../../../src/config/config';
import { BudgetRefusal, guardBudget, type FleetLimit } from '../../../src/lifecycle/budget-guard';
import { createLogger } from '../../../src/logger';

function logs() {
  const stream = new PassThrough();
  const lines: { level: string; msg: string }[] = [];
  stream.on('data', (d: Buffer) =>
    d
      .toString()
      .split('\n')
      .filter(Boolean)
      .forEach((l) => lines.push(JSON.parse(l))),
  );
  return { log: createLogger({ level: 'debug', base: {}, stream }), lines };
}

const server = (maxConnections: number, others = 0, superuser = false): FleetLimit => ({
  kind: 'server',
  limit: { maxConnections, reserved: 3, superuser, others },
});
// 2 replicas x 2 workers x 10 = 40, + 20 reload overlap + 4 migrations + 4 probes = 68.
const input = { replicas: 2, instances: 2, poolMax: 10, deployOverlap: false };

async function run(limit: FleetLimit, mode: 'refuse' | 'warn' | 'off' = 'refuse') {
  const { log, lines } = logs();
  let read = 0;
  const result = await guardBudget({
    mode,
    input,
    readLimit: async () => {
      read += 1;
      return limit;
    },
    log,
  }).catch((err: unknown) => err);
  await new Promise((r) => setImmediate(r));
  return { result, lines, read };
}

test('a configuration over max_connections - reserved refuses with the whole line', async () => {
  const { result, lines } = await run(server(60, 2));
  expect(result).toBeInstanceOf(BudgetRefusal);
  expect((result as BudgetRefusal).exitCode).toBe(78);
  expect((result as BudgetRefusal).line).toBe(
    '2 replicas x 2 workers x 10 = 40, + 20 reload overlap + 4 migrations + 4 probes = 68 at peak > 55 allowed (max_connections 60 - 3 reserved - 2 held by others)',
  );
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatchObject({ level: 'error' });
  expect(lines[0]?.msg).toMatch(/^connection budget exceeded: 2 replicas .* -> lower DB_POOL_MAX/);
});

test('over only because of others: refuse warns and boots; warn never refuses; off never reads', async () => {
  // 75 - 3 = 72 >= 68 alone; 72 - 10 others = 62 < 68.
  const withOthers = await run(server(75, 10));
  expect(withOthers.result).toMatchObject({ status: 'fail', allowed: 62 });
  expect(withOthers.lines[0]).toMatchObject({ level: 'warn' });
  expect(withOthers.lines[0]?.msg).toMatch(/\(over the limit only with the connections others/);

  const warned = await run(server(60), 'warn');
  expect(warned.result).toMatchObject({ status: 'fail' });
  expect(warned.lines[0]).toMatchObject({ level: 'warn' });

  const off = await run(server(1), 'off');
  expect(off).toMatchObject({ result: null, read: 0, lines: [] });
});

test('a superuser may use the reserved slots; near the limit is a warning, well inside is info', async () => {
  expect((await run(server(68, 0, true))).result).toMatchObject({ status: 'warn', allowed: 68 });
  const ok = await run(server(100));
  expect(ok.result).toMatchObject({ status: 'ok', allowed: 97 });
  expect(ok.lines[0]).toMatchObject({ level: 'info' });
  expect(ok.lines[0]?.msg).toBe(
    'connection budget: 2 replicas x 2 workers x 10 = 40, + 20 reload overlap + 4 migrations + 4 probes = 68 at peak <= 97 allowed (max_connections 100 - 3 reserved - 0 held by others)',
  );
});

test('behind PgBouncer: max_client_conn without the direct migrations, or not checked without admin', async () => {
  const pooled = await run({ kind: 'pgbouncer', maxClientConn: 50, migrationsDirect: true });
  expect(pooled.result).toBeInstanceOf(BudgetRefusal);
  expect((pooled.result as BudgetRefusal).line).toBe(
    '64 client connections at peak > PgBouncer max_client_conn 50',
  );
  const blind = await run({ kind: 'pgbouncer', maxClientConn: null, migrationsDirect: true });
  expect(blind.result).toBeNull();
  expect(blind.lines[0]?.msg).toMatch(/not checked: behind PgBouncer; set DB_POOLER_ADMIN_URL/);
});

test('limits that cannot be read never stop the boot', async () => {
  const { log, lines } = logs();
  const r = await guardBudget({
    mode: 'refuse',
    input,
    readLimit: () => Promise.reject(new Error('permission denied for view pg_stat_activity')),
    log,
  });
  await new Promise((res) => setImmediate(res));
  expect(r).toBeNull();
  expect(lines[0]).toMatchObject({ level: 'warn' });
});

test('the inputs come from the configuration: Railway windows count old and new side by side', () => {
  const base = { DATABASE_URL: 'postgres://u:p@h/db', WEB_CONCURRENCY: '2', KEEL_REPLICAS: '2' };
  expect(budgetInput(loadConfig(base))).toEqual(input);
  const railway = loadConfig({
    ...base,
    RAILWAY_ENVIRONMENT: 'production',
    RAILWAY_DEPLOYMENT_DRAINING_SECONDS: '20',
  });
  expect(budgetInput(railway).deployOverlap).toBe(true);
  expect(loadConfig(base).platform.budgetCheck).toBe('refuse');
  // Without DATABASE_URL (the embedded database on a laptop) the default only warns.
  expect(loadConfig({}).platform.budgetCheck).toBe('warn');
  expect(loadConfig({ KEEL_BUDGET_CHECK: 'refuse' }).platform.budgetCheck).toBe('refuse');
  expect(() => loadConfig({ ...base, KEEL_BUDGET_CHECK: 'maybe' })).toThrow(
    /KEEL_BUDGET_CHECK="maybe" is not one of the allowed values; allowed: refuse, warn, off/,
  );
});
