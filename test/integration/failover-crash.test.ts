/**
 * A crash failover behind one address with synchronous replication: the primary dies
 * (`pg_ctl stop -m immediate`: no shutdown, no last WAL sent) under a keyed, retrying client
 * load, the standby is promoted and the address points at it. No logical operation fails and
 * no acknowledged write is lost: every 2xx transfer is on the promoted standby, and the ledger
 * invariants hold there. (The asynchronous case, where loss is possible, is
 * failover-async-loss.test.ts.)
 */
import { checkInvariants, seedAccounts } from '../support/ledger';
import { firstOkAfter, startFailoverLoad, useMovingPair } from '../support/failover';
import { psql } from '../support/postgres';
import { until } from '../support/wait';

const DB = 'keel_ha';
const ha = useMovingPair(DB, { synchronous: true });
let accounts: number[];

beforeAll(async () => {
  accounts = await seedAccounts(ha.w.base, 8, 1000);
});

test('crash under load, synchronous standby: 0 failed operations, every 2xx transfer on the promoted standby', async () => {
  const [sync] = await psql<{ s: string }>(
    ha.pair.primary.url(),
    `select sync_state as s from pg_stat_replication`,
  );
  expect(sync!.s).toBe('sync');
  const load = startFailoverLoad({ base: ha.w.base, accounts, concurrency: 6 });
  try {
    await new Promise((r) => setTimeout(r, 1500));
    // The primary dies mid-load; HAProxy's check fails with it.
    await ha.pair.primary.stop('immediate');
    ha.proxy.point(null);
    await ha.pair.standby.promote();
    const promotedAt = Date.now();
    ha.proxy.point(ha.pair.standby.port);
    await until(
      'a 2xx transfer after the promote',
      () => load.live().okAt.some((t) => t >= promotedAt),
      30000,
    );
    await new Promise((r) => setTimeout(r, 1000));
    const result = await load.stop();
    console.log('crash failover (sync)', {
      ops: result.ops,
      acknowledgedTransfers: result.okTransfers.length,
      errorAttempts: result.errorAttempts,
      firstOkAfterPromoteMs: firstOkAfter(result, promotedAt),
      byStatus: result.byStatus,
    });
    expect(result.failedOps).toBe(0);
    // Every acknowledged transfer (before, during and after the crash) is on the new primary.
    await checkInvariants(ha.pair.standby.url(DB), result);
  } finally {
    await load.stop();
  }
});
