/**
 * Requests during a schema change: a transaction whose prepared statement a change made stale
 * (0A000 "cached plan must not change result type") and a statement that waited for a lock past
 * DB_LOCK_TIMEOUT_MS (55P03) are retried as a whole, like any transient failure. A request cut
 * because it kept waiting for a lock answers the contract's 503 database_unavailable, and the log
 * and /metrics say it was a lock wait, not an outage.
 */
import { psql } from '../support/postgres';
import { holdLock } from '../support/migrate';
import { call, useWorker } from '../support/worker';
import { until } from '../support/wait';

jest.setTimeout(60_000);

// One connection: the statement the first request prepares is the one the second request meets.
const fx = useWorker({ DB_POOL_MAX: '1', DB_LOCK_TIMEOUT_MS: '200', DB_RETRY_BUDGET_MS: '1500' });

test('a transaction meets a plan made stale by an ALTER: it is retried whole and commits', async () => {
  const first = await call(fx.base, 'POST', '/api/accounts', { name: 'before', balance: 5 });
  expect(first.status).toBe(201);
  // The insert's RETURNING row changes type: the prepared statement no longer fits.
  await psql(fx.url, 'alter table accounts alter column name type varchar(100)');
  const second = await call(fx.base, 'POST', '/api/accounts', { name: 'after', balance: 7 });
  expect(second.status).toBe(201);
  expect(second.body).toMatchObject({ name: 'after', balance: 7 });
  const rows = await psql(fx.url, `select balance from accounts where name = 'after'`);
  expect(rows).toEqual([{ balance: '7' }]);
  const retried = fx.w.logs.find((l) => l.msg === 'db retry' && l.code === '0A000');
  expect(retried).toBeDefined();
});

test('a statement queued behind a held lock gives up after the lock timeout and is retried', async () => {
  const created = await call(fx.base, 'POST', '/api/accounts', { name: 'locked', balance: 1 });
  const holder = await holdLock(fx.url, ['lock table accounts in access exclusive mode'], {
    holdMs: 10_000,
  });
  try {
    const answer = call(fx.base, 'GET', `/api/accounts/${created.body.id}`);
    // Released once the request has met the lock timeout and is retrying, within its budget.
    const retried = () => fx.w.logs.some((l) => l.msg === 'db retry' && l.code === '55P03');
    await until('a retry after 55P03', retried, 10_000);
    await holder.release();
    const res = await answer;
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: created.body.id, name: 'locked' });
  } finally {
    await holder.release();
  }
});

test('a request that waits on a lock past its budget: 503 database_unavailable, reason lock_wait', async () => {
  const created = await call(fx.base, 'POST', '/api/accounts', { name: 'cut', balance: 1 });
  const holder = await holdLock(fx.url, ['lock table accounts in access exclusive mode'], {
    holdMs: 10_000,
  });
  try {
    const res = await call(fx.base, 'GET', `/api/accounts/${created.body.id}`);
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('database_unavailable');
    expect(res.headers.get('retry-after')).toBe('1');
    const answered = fx.w.logs.filter((l) => l.msg === 'request answered 503');
    expect(answered.at(-1)).toMatchObject({ code: 'database_unavailable', reason: 'dbLockWait' });
    expect(fx.w.logs.find((l) => l.msg === 'db retry budget exhausted')).toMatchObject({
      reason: 'lock_wait',
      code: '55P03',
    });
  } finally {
    await holder.release();
  }
  const metrics = await (await fetch(`${fx.base}/metrics`)).text();
  expect(metrics).toMatch(/^keel_db_lock_wait_cuts_total\{[^}]*\} 1$/m);
  expect(metrics).toMatch(/^keel_db_queries_total\{[^}]*outcome="lock"[^}]*\} [1-9]/m);
});
