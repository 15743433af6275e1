import { createKeyJanitor } from '../../src/ledger/idempotency';
import { psql, startTestPostgres, type TestPostgres } from '../support/postgres';
import { call, startTestWorker, type TestWorker } from '../support/worker';
import { seedAccounts } from '../support/ledger';

let pg: TestPostgres;
let w: TestWorker;
let url: string;

beforeAll(async () => {
  pg = await startTestPostgres();
  url = await pg.createDatabase();
  w = await startTestWorker(url);
});

afterAll(async () => {
  await w?.stop();
  await pg?.destroy();
});

test('keys older than the retention window go; recent ones stay and still replay', async () => {
  const [a, b] = await seedAccounts(w.base, 2, 100);
  const old = await call(
    w.base,
    'POST',
    '/api/transfers',
    { from: a, to: b, amount: 1 },
    { 'Idempotency-Key': 'old' },
  );
  const recent = await call(
    w.base,
    'POST',
    '/api/transfers',
    { from: a, to: b, amount: 2 },
    { 'Idempotency-Key': 'new' },
  );
  expect([old.status, recent.status]).toEqual([201, 201]);
  await psql(
    url,
    `update idempotency_keys set created_at = now() - interval '49 hours' where key = 'client:old'`,
  );
  const janitor = createKeyJanitor({ db: w.worker.db, logger: w.worker.logger });
  expect(await janitor.sweep()).toBe(1);
  const keys = await psql<{ key: string }>(url, 'select key from idempotency_keys order by key');
  expect(keys.map((k) => k.key)).toEqual(['client:new']);
  const replay = await call(
    w.base,
    'POST',
    '/api/transfers',
    { from: a, to: b, amount: 2 },
    { 'Idempotency-Key': 'new' },
  );
  expect(replay.headers.get('idempotent-replayed')).toBe('true');
  expect(replay.body).toEqual(recent.body);
});
