/**
 * Asynchronous replication (Railway's HA template default) can lose an acknowledged write on a
 * crash failover: a commit is acknowledged before the standby has its WAL. Shown by its
 * mechanism, not by a race: with the standby's replication link cut, a transfer is answered 201;
 * the primary crashes, the standby is promoted, and that transfer is not there. Keel cannot
 * undo this; docs/failover.md says what to configure (synchronous_standby_names) to rule it out,
 * and failover-crash.test.ts shows no loss with it.
 */
import { useMovingPair } from '../support/failover';
import { checkInvariants, seedAccounts } from '../support/ledger';
import { psql } from '../support/postgres';
import { until, untilValue } from '../support/wait';
import { call } from '../support/worker';

const DB = 'keel_ha';
const ha = useMovingPair(DB);

// 0 until the standby has replayed the row (or, right after start, the migration creating the
// table: 42P01 there means "not replicated yet").
const onStandby = async (id: number) =>
  (
    await psql(ha.pair.standby.url(DB), `select id from transfers where id = ${id}`).catch(
      (err: { code?: string }) => {
        if (err.code === '42P01') return [];
        throw err;
      },
    )
  ).length;

test('async: a 201 answered while the standby lags is absent after a crash failover', async () => {
  const [a, b] = await seedAccounts(ha.w.base, 2, 100);
  const before = await call(ha.w.base, 'POST', '/api/transfers', { from: a, to: b, amount: 1 });
  expect(before.status).toBe(201);
  // Streaming: the first transfer reaches the standby.
  await untilValue(
    () => onStandby(before.body.id),
    (n) => n === 1,
    10000,
    'replicated',
  );

  // The standby stops receiving WAL (a lagging or partitioned standby).
  ha.pair.link.setMode('partition');
  const lost = await call(ha.w.base, 'POST', '/api/transfers', { from: a, to: b, amount: 2 });
  expect(lost.status).toBe(201); // acknowledged: asynchronous commit does not wait for the standby

  await ha.pair.primary.stop('immediate');
  ha.proxy.point(null);
  await ha.pair.standby.promote();
  ha.proxy.point(ha.pair.standby.port);
  await until(
    '/readyz 200 on the promoted standby',
    async () => {
      return (await fetch(`${ha.w.base}/readyz`)).status === 200;
    },
    30000,
  );

  expect(await onStandby(before.body.id)).toBe(1);
  expect(await onStandby(lost.body.id)).toBe(0); // the acknowledged write is gone
  // The ledger is consistent without it, and Keel writes on the new primary.
  await checkInvariants(ha.pair.standby.url(DB));
  const after = await call(ha.w.base, 'POST', '/api/transfers', { from: a, to: b, amount: 3 });
  expect(after.status).toBe(201);
  const [row] = await psql<{ balance: string }>(
    ha.pair.standby.url(DB),
    `select balance::text from accounts where id = ${b}`,
  );
  expect(row!.balance).toBe('104'); // 100 + 1 + 3: the lost 2 never happened here
});
