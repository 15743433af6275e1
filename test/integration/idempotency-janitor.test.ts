/**
 * The idempotency table stays bounded: generated keys go within minutes, client keys after
 * 48 h, a backlog is swept to the end, one worker sweeps at a time (an advisory lock, on any
 * instance), rows a transfer holds are skipped, and a key swept mid-request is no 500.
 */
import postgres from 'postgres';
import {
  CLIENT_KEY_RETENTION_HOURS,
  createKeyJanitor,
  GENERATED_KEY_RETENTION_MINUTES,
} from '../../src/ledger/idempotency';
import { seedAccounts } from '../support/ledger';
import { psql } from '../support/postgres';
import { waitFor } from '../support/wait';
import { call, startTestWorker, useWorker } from '../support/worker';

// Its own timer stays out of the way (an hour); the timer test starts a worker of its own.
const ctx = useWorker({ KEY_SWEEP_INTERVAL_MS: '3600000' });

let a: number;
let b: number;

beforeAll(async () => {
  [a, b] = (await seedAccounts(ctx.w.base, 2, 1000)) as [number, number];
});

const keys = async () =>
  (await psql<{ key: string }>(ctx.url, 'select key from idempotency_keys order by key')).map(
    (k) => k.key,
  );

/** Rows written straight into the table, `age` old. */
async function insertKeys(prefix: string, n: number, age: string): Promise<void> {
  await psql(
    ctx.url,
    `insert into idempotency_keys (key, request_hash, status, body, owner, created_at)
     select '${prefix}' || i, 'h', 201, '{}', gen_random_uuid(), now() - interval '${age}'
     from generate_series(1, ${n}) i`,
  );
}

function janitor(batch?: number) {
  return createKeyJanitor({
    db: ctx.w.worker.db,
    logger: ctx.w.worker.logger,
    ...(batch ? { batch } : {}),
  });
}

test('generated keys go after minutes, client keys after 48 h; recent ones stay and replay', async () => {
  await psql(ctx.url, 'delete from idempotency_keys');
  const keyed = await call(
    ctx.w.base,
    'POST',
    '/api/transfers',
    { from: a, to: b, amount: 2 },
    { 'Idempotency-Key': 'new' },
  );
  const keyless = await call(ctx.w.base, 'POST', '/api/transfers', { from: a, to: b, amount: 1 });
  expect([keyed.status, keyless.status]).toEqual([201, 201]);
  const generated = `gen:${keyless.headers.get('idempotency-key')!.replace(/^keel-gen-/, '')}`;
  await insertKeys('gen:old-', 3, `${GENERATED_KEY_RETENTION_MINUTES + 1} minutes`);
  await insertKeys('client:old-', 3, `${CLIENT_KEY_RETENTION_HOURS + 1} hours`);
  await insertKeys('client:day-', 2, '30 hours');
  expect(await janitor().sweep()).toBe(6);
  expect(await keys()).toEqual(['client:day-1', 'client:day-2', 'client:new', generated].sort());
  const replay = await call(
    ctx.w.base,
    'POST',
    '/api/transfers',
    { from: a, to: b, amount: 2 },
    { 'Idempotency-Key': 'new' },
  );
  expect(replay.headers.get('idempotent-replayed')).toBe('true');
  expect(replay.body).toEqual(keyed.body);
});

test('a backlog many batches long is swept to the end in one sweep', async () => {
  await psql(ctx.url, 'delete from idempotency_keys');
  await insertKeys('gen:backlog-', 5500, '1 hour');
  expect(await janitor(1000).sweep()).toBe(5500);
  expect(await keys()).toEqual([]);
});

test('the worker timer sweeps, on any instance (here 1)', async () => {
  // A 200 ms timer stands in for the minute.
  const w1 = await startTestWorker(ctx.url, {
    NODE_APP_INSTANCE: '1',
    KEY_SWEEP_INTERVAL_MS: '200',
  });
  try {
    await insertKeys('gen:timer-', 10, '1 hour');
    await waitFor(async () => !(await keys()).some((x) => x.startsWith('gen:timer-')));
    expect(w1.logs.some((l) => l.msg === 'expired idempotency keys deleted')).toBe(true);
  } finally {
    await w1.stop();
  }
});

describe('with a second database session', () => {
  let other: postgres.Sql;
  beforeEach(() => {
    other = postgres(ctx.url, { max: 2, onnotice: () => undefined });
  });
  afterEach(async () => {
    await other.end({ timeout: 5 });
  });

  test('while another worker holds the sweep lock, this one leaves the rows alone', async () => {
    await psql(ctx.url, 'delete from idempotency_keys');
    await insertKeys('gen:locked-', 5, '1 hour');
    const held = await other.reserve();
    try {
      await held`select pg_advisory_lock(7304812)`;
      expect(await janitor().sweep()).toBe(0);
      expect(await keys()).toHaveLength(5);
      await held`select pg_advisory_unlock(7304812)`;
    } finally {
      held.release();
    }
    expect(await janitor().sweep()).toBe(5);
  });

  test('a row a transfer holds is skipped, not waited for', async () => {
    await psql(ctx.url, 'delete from idempotency_keys');
    await insertKeys('gen:busy-', 3, '1 hour');
    await other.begin(async (tx) => {
      await tx`select 1 from idempotency_keys where key = 'gen:busy-1' for update`;
      // The sweep finishes while the row is locked (the transaction is still open here).
      expect(await janitor().sweep()).toBe(2);
    });
    expect(await keys()).toEqual(['gen:busy-1']);
  });

  test('a key swept between its conflict and the read of its row is no 500', async () => {
    await psql(ctx.url, 'delete from idempotency_keys');
    const body = { from: a, to: b, amount: 3 };
    const first = await call(ctx.w.base, 'POST', '/api/transfers', body, {
      'Idempotency-Key': 'edge',
    });
    expect(first.status).toBe(201);
    // A statement trigger pauses the key insert after its conflict check, on a lock we hold.
    await psql(
      ctx.url,
      `create function pause_key_insert() returns trigger language plpgsql as $$
       begin perform pg_advisory_xact_lock(4242); return null; end $$;
       create trigger pause_key_insert after insert on idempotency_keys
       for each statement execute function pause_key_insert()`,
    );
    const gate = await other.reserve();
    try {
      await gate`select pg_advisory_lock(4242)`;
      const retry = call(ctx.w.base, 'POST', '/api/transfers', body, { 'Idempotency-Key': 'edge' });
      await waitFor(async () => (await lockWaiters('advisory')) > 0);
      // The sweep deletes the row meanwhile (as at the 48 h boundary). It may have to wait for
      // the paused request; it must not be waited for.
      const sweptRow = psql(ctx.url, `delete from idempotency_keys where key = 'client:edge'`);
      await waitFor(async () => (await lockWaiters('transactionid')) > 0 || (await gone()));
      await gate`select pg_advisory_unlock(4242)`;
      const r = await retry;
      expect(r.status).toBe(201);
      expect(r.body).toEqual(first.body);
      await sweptRow;
    } finally {
      gate.release();
      await psql(
        ctx.url,
        'drop trigger pause_key_insert on idempotency_keys; drop function pause_key_insert()',
      );
    }
    const [row] = await psql<{ n: number }>(
      ctx.url,
      `select count(*)::int as n from transfers where amount = 3`,
    );
    expect(row!.n).toBe(1);
  });
});

async function lockWaiters(type: string): Promise<number> {
  const [r] = await psql<{ n: number }>(
    ctx.url,
    `select count(*)::int as n from pg_locks where not granted and locktype = '${type}'`,
  );
  return r!.n;
}

async function gone(): Promise<boolean> {
  return (await keys()).every((k) => k !== 'client:edge');
}
