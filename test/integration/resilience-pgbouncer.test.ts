/** The resilience scenarios again with a real PgBouncer (transaction mode) in the path. */
import { FAULT_ENV, restartFor, terminateLoop } from '../support/faults';
import { sleep } from '../support/wait';
import { checkInvariants, runLoad, seedAccounts, type LoadResult } from '../support/ledger';
import { needs } from '../support/prereqs';
import { startPgBouncer, type PgBouncer } from '../support/pgbouncer';
import { startTestPostgres, type TestPostgres } from '../support/postgres';
import { startTestWorker, type TestWorker } from '../support/worker';

const test = needs('pgbouncer'); // skipped, with one line, where pgbouncer is missing

let pg: TestPostgres;
let bouncer: PgBouncer;
let w: TestWorker | undefined;

const ENV = { ...FAULT_ENV, DB_PREPARE: 'false' };

beforeAll(async () => {
  pg = await startTestPostgres({ localOnly: true });
  bouncer = await startPgBouncer({ targetPort: pg.port, poolSize: 10 });
});

afterEach(async () => {
  await w?.stop();
  w = undefined;
});

afterAll(async () => {
  await bouncer?.stop();
  await pg?.destroy();
});

async function setup() {
  const direct = await pg.createDatabase();
  const db = new URL(direct).pathname.slice(1);
  // Requests go through PgBouncer; migrations and the advisory lock use the direct URL.
  w = await startTestWorker(bouncer.url(db), { ...ENV, DATABASE_MIGRATION_URL: direct });
  const ids = await seedAccounts(w.base, 8, 10000);
  return { direct, ids, w };
}

function only2xx(load: LoadResult): void {
  expect(Object.entries(load.byStatus).filter(([s]) => !['200', '201', '409'].includes(s))).toEqual(
    [],
  );
  expect(load.errors).toEqual([]);
}

test('the statement timeout reaches the server through PgBouncer (SET LOCAL)', async () => {
  const { w } = await setup();
  const res = await fetch(`${w.base}/api/accounts?limit=1`);
  expect(res.status).toBe(200);
  const timeout = await w.worker.db.read(
    (sql) => sql<{ statement_timeout: string }[]>`show statement_timeout`,
    {
      deadline: Date.now() + 2000,
    },
  );
  expect(timeout[0]!.statement_timeout).toBe('1s');
});

test('terminate-loop through PgBouncer: clients see only answers', async () => {
  const { direct, ids, w } = await setup();
  const killer = terminateLoop(pg.url(), 500);
  const load = await runLoad({ base: w.base, accounts: ids, durationMs: 5000, concurrency: 12 });
  const killed = await killer.stop();
  process.stderr.write(
    `resilience pgbouncer-terminate: sent=${load.sent} statuses=${JSON.stringify(load.byStatus)} longestMs=${load.longestMs} killed=${killed} retries=${w.worker.stats.retries}\n`,
  );
  expect(killed).toBeGreaterThan(5);
  only2xx(load);
  await checkInvariants(direct, load);
});

test('restart behind PgBouncer: a 3 s outage is absorbed', async () => {
  const { direct, ids, w } = await setup();
  const loadP = runLoad({ base: w.base, accounts: ids, durationMs: 7000, concurrency: 8 });
  await sleep(1500);
  await restartFor(pg, 3000);
  const load = await loadP;
  process.stderr.write(
    `resilience pgbouncer-restart: sent=${load.sent} statuses=${JSON.stringify(load.byStatus)} longestMs=${load.longestMs} retries=${w.worker.stats.retries}\n`,
  );
  only2xx(load);
  await checkInvariants(direct, load);
});
