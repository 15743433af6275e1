/** Waits for a condition the test can observe (a log line, a row, a lock), polling it. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  everyMs = 10,
): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, everyMs));
}
