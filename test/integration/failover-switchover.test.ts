/**
 * A planned switchover behind one address, as Railway's "Make Leader" runs it: the address
 * stops taking connections and drops the open ones, the primary stops cleanly (its last WAL
 * reaches the standby), the standby is promoted, the address points at it. Under a keyed,
 * retrying client load: /readyz answers 503 while no primary answers, no logical operation
 * fails, and the ledger invariants hold on the new primary with every 2xx transfer in it.
 */
import { checkInvariants, seedAccounts } from '../support/ledger';
import { firstOkAfter, startFailoverLoad, useMovingPair } from '../support/failover';
import { until } from '../support/wait';

const DB = 'keel_ha';
const ha = useMovingPair(DB);
let accounts: number[];

beforeAll(async () => {
  accounts = await seedAccounts(ha.w.base, 8, 1000);
});

const readyz = async () => (await fetch(`${ha.w.base}/readyz`)).status;

test('switchover under load: 503 from /readyz in the gap, 0 failed operations, invariants on the new primary', async () => {
  const load = startFailoverLoad({ base: ha.w.base, accounts, concurrency: 6 });
  try {
    await new Promise((r) => setTimeout(r, 1000));
    // HAProxy's health check sees the primary go: no new connections, open ones dropped.
    ha.proxy.point(null);
    await ha.pair.primary.stop('fast');
    await until(
      '/readyz answering 503 while no primary answers',
      async () => (await readyz()) === 503,
    );
    await ha.pair.standby.promote();
    const promotedAt = Date.now();
    ha.proxy.point(ha.pair.standby.port);
    await until('/readyz answering 200 on the new primary', async () => (await readyz()) === 200);
    // Load on the new primary for a while before stopping.
    await new Promise((r) => setTimeout(r, 1500));
    const result = await load.stop();
    // Figures for the report, never asserted as timings.
    console.log('switchover', {
      ops: result.ops,
      errorAttempts: result.errorAttempts,
      firstOkAfterPromoteMs: firstOkAfter(result, promotedAt),
      byStatus: result.byStatus,
    });
    expect(result.failedOps).toBe(0);
    expect(firstOkAfter(result, promotedAt)).not.toBeNull();
    await checkInvariants(ha.pair.standby.url(DB), result);
  } finally {
    await load.stop();
  }
});
