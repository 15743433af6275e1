/**
 * The failover tests' fixture: a replication pair behind one moving address with a worker on it.
 * The careful client load is ./failover-load (no jest globals: the bench uses it too).
 */
import { createMovingProxy, type MovingProxy } from './moving-proxy';
import { startReplicationPair, type ReplicationPair } from './replication';
import { startTestWorker, type TestWorker } from './worker';

export {
  firstOkAfter,
  startFailoverLoad,
  type FailoverLoad,
  type FailoverLoadResult,
} from './failover-load';

/** What `useMovingPair` hands a test file; set once `beforeAll` has run. */
export interface MovingPairFixture {
  pair: ReplicationPair;
  proxy: MovingProxy;
  w: TestWorker;
}

/**
 * A replication pair behind one moving address, and an in-process worker on that address, for
 * the whole file (database `db`, on the standby too). Call it at the top level of the file.
 */
export function useMovingPair(db: string, opts: { synchronous?: boolean } = {}): MovingPairFixture {
  const f = {} as MovingPairFixture;
  beforeAll(async () => {
    f.pair = await startReplicationPair({ database: db, ...opts });
    f.proxy = await createMovingProxy(f.pair.primary.port);
    f.w = await startTestWorker(f.proxy.url(f.pair.primary.url(db)));
  });
  afterAll(async () => {
    try {
      await f.w?.stop();
    } finally {
      await f.proxy?.close();
      await f.pair?.destroy();
    }
  });
  return f;
}
