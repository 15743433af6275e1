/**
 * Waits until everything written to a stream so far has been handed on. Under PM2 a worker's
 * `process.stdout.write` is replaced by one that appends to the log file through an
 * asynchronous fs stream, so `process.exit` right after the logger's `finish` loses the last
 * lines (the shutdown's own). An empty write with a callback is a barrier: streams complete
 * writes in order.
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
