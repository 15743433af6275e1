/**
 * Waits until everything written to a stream so far has been handed on (under PM2 stdout is an
 * async file stream: docs/design/pm2.md).
 */
export function streamDrained(stream: NodeJS.WritableStream, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    timer.unref();
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    try {
      stream.write('', done);
    } catch {
      done();
    }
  });
}
