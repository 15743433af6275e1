import { cancelOnAbort } from '../../../src/db/cancel';

/** A query shaped like postgres.js's PendingQuery: `cancel()` uses its canceller once. */
function pendingQuery() {
  let settle!: () => void;
  const q = new Promise<string>((resolve) => {
    settle = () => resolve('done');
  }) as Promise<string> & {
    cancel: () => unknown;
    canceller: ((q: unknown) => void) | null;
  };
  const sent: number[] = [];
  q.canceller = () => sent.push(Date.now());
  q.cancel = function cancel() {
    return this.canceller && (this.canceller(this), (this.canceller = null));
  };
  return { q, sent, settle };
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('nothing is sent until the signal aborts', async () => {
  const { q, sent, settle } = pendingQuery();
  const ac = new AbortController();
  void cancelOnAbort(q, ac.signal, { retryMs: 5, attempts: 4 });
  await wait(30);
  expect(sent).toHaveLength(0);
  settle();
  await q;
});

test('a cancel the server ignored is sent again until the attempts run out, then no more', async () => {
  const { q, sent, settle } = pendingQuery();
  const ac = new AbortController();
  void cancelOnAbort(q, ac.signal, { retryMs: 5, attempts: 4 });
  ac.abort();
  for (let i = 0; i < 200 && sent.length < 4; i++) await wait(10);
  expect(sent).toHaveLength(4);
  await wait(100);
  expect(sent).toHaveLength(4);
  settle();
  await q;
});

test('no cancel is sent once the query has settled', async () => {
  const { q, sent, settle } = pendingQuery();
  const ac = new AbortController();
  void cancelOnAbort(q, ac.signal, { retryMs: 20, attempts: 5 });
  ac.abort();
  expect(sent).toHaveLength(1);
  settle();
  await q;
  await wait(100);
  expect(sent).toHaveLength(1);
});

test('a query that settles before any abort never cancels', async () => {
  const { q, sent, settle } = pendingQuery();
  const ac = new AbortController();
  void cancelOnAbort(q, ac.signal, { retryMs: 5, attempts: 3 });
  settle();
  await q;
  ac.abort();
  await wait(30);
  expect(sent).toHaveLength(0);
});
