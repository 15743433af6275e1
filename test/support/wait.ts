/** Waiting in tests: every poll is bounded by a deadline, except `waitFor` (jest's limit bounds it). */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits for a condition the test can observe (a log line, a row, a lock), polling it. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  everyMs = 10,
): Promise<void> {
  while (!(await check())) await sleep(everyMs);
}

/** Polls `check` every 20 ms until it holds; throws naming `what` after `ms`. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 5000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Polls `check` until it holds or `timeoutMs` passes; returns whether it held. */
export async function holds(
  check: () => boolean,
  timeoutMs: number,
  everyMs = 25,
): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) return false;
    await sleep(everyMs);
  }
  return true;
}

/** Polls `probe` every 50 ms until `pred` holds of its value (bounded); returns that value. */
export async function untilValue<T>(
  probe: () => Promise<T>,
  pred: (v: T) => boolean,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (pred(v)) return v;
    if (Date.now() > end)
      throw new Error(`${what}: not reached in ${timeoutMs} ms (${JSON.stringify(v)})`);
    await sleep(50);
  }
}
