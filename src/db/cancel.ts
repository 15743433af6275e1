/**
 * Cancels a query on the server when its client goes away, sent again with backoff until the
 * query settles (Postgres can ignore one cancel: docs/design/database-path.md).
 */

/** What postgres.js's PendingQuery exposes: `cancel()` sends once, then forgets its canceller. */
interface PendingQuery {
  cancel?: () => unknown;
  canceller?: ((query: unknown) => unknown) | null;
}

export interface CancelOptions {
  /** First resend delay; each later one doubles. */
  retryMs: number;
  /** Cancel requests sent at most, the first included. */
  attempts: number;
}

const DEFAULT_CANCEL: CancelOptions = { retryMs: 50, attempts: 6 };

export function cancelOnAbort<T>(
  work: Promise<T>,
  signal: AbortSignal | undefined,
  options: CancelOptions = DEFAULT_CANCEL,
  /** Marks the socket the cancel opens (./socket `asCancel`): it takes the spare slot or none. */
  asCancel: <R>(send: () => R) => R = (send) => send(),
): Promise<T> {
  const query = work as Promise<T> & PendingQuery;
  if (!signal || typeof query.cancel !== 'function') return work;
  const canceller = query.canceller;
  let settled = false;
  let timer: NodeJS.Timeout | null = null;

  const send = (attempt: number) => {
    timer = null;
    if (settled) return;
    // postgres.js clears its canceller after one use; give it back for the resend.
    if (attempt > 1 && typeof canceller === 'function') query.canceller = canceller;
    void Promise.resolve(asCancel(() => query.cancel!.call(query))).catch(() => undefined);
    if (attempt < options.attempts && typeof canceller === 'function') {
      timer = setTimeout(() => send(attempt + 1), options.retryMs * 2 ** (attempt - 1));
      timer.unref();
    }
  };
  const onAbort = () => send(1);
  signal.addEventListener('abort', onAbort, { once: true });
  const done = () => {
    settled = true;
    if (timer) clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  };
  work.then(done, done);
  return work;
}
