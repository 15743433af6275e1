/**
 * A crash failover behind one address with synchronous replication: the primary dies
 * (`pg_ctl stop -m immediate`: no shutdown, no last WAL sent) under a keyed, retrying client
 * load, the standby is promoted and the address points at it. No logical operation fails and
 * no acknowledged write is lost: every 2xx transfer is on the promoted standby, and the ledger
 * invariants hold there. (The asynchronous case, where loss is possible, is
 * failover-async-loss.test.ts.)
 */
import { checkInvariants, seedAccounts } from '../support/ledger';
import { firstOkAfter, startFailoverLoad } from '../support/failover';
import { createMovingProxy, type MovingProxy } from '../support/moving-proxy';
import { psql } from '../support/postgres';
import { startReplicationPair, type ReplicationPair } from '../support/replication';
import { until } from '../support/wait';
import { startTestWorker, type TestWorker } from '../support/worker';

const DB = 'keel_ha';
let pair: ReplicationPair;
let proxy: MovingProxy;
let w: TestWorker;
let accounts: number[];

beforeAll(async () => {
  pair = await startReplicationPair({ database: DB, synchronous: true });
  proxy = await createMovingProxy(pair.primary.port);
  w = await startTestWorker(proxy.url(pair.primary.url(DB)));
  accounts = await seedAccounts(w.base, 8, 1000);
});

afterAll(async () => {
  try {
    await w?.stop();
  } finally {
    await proxy?.close();
    await pair?.destroy();
  }
});

test('crash under load, synchronous standby: 0 failed operations, every 2xx transfer on the promoted standby', async () => {
  const [sync] = await psql<{ s: string }>(
    pair.primary.url(),
    `select sync_state as s from pg_stat_replication`,
  );
  expect(sync!.s).toBe('sync');
  const load = startFailoverLoad({ base: w.base, accounts, concurrency: 6 });
  try {
    await new Promise((r) => setTimeout(r, 1500));
    // The primary dies mid-load; HAProxy's check fails with it.
    await pair.primary.stop('immediate');
    proxy.point(null);
    await pair.standby.promote();
    const promotedAt = Date.now();
    proxy.point(pair.standby.port);
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
    await checkInvariants(pair.standby.url(DB), result);
  } finally {
    await load.stop();
  }
});
