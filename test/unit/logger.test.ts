import { Writable } from 'node:stream';
import {
  createBatchedStream,
  createLineWriter,
  createLogger,
  flushLogger,
  scrub,
} from '../../src/logger';

/** A stream that keeps what is written to it. */
function captured(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(c: Buffer, _e, cb) {
      lines.push(c.toString());
      cb();
    },
  });
  return { lines, stream };
}

test('scrub removes URL passwords and literal secrets', () => {
  expect(scrub('connect postgres://u:p%40ss@h:5/db failed')).toBe(
    'connect postgres://u:***@h:5/db failed',
  );
  expect(scrub('password authentication failed: hunter22', ['hunter22'])).toBe(
    'password authentication failed: ***',
  );
});

test('log lines are JSON with level, time, msg and the base fields; secrets scrubbed everywhere', async () => {
  const { lines, stream } = captured();
  const logger = createLogger({
    level: 'info',
    base: { worker: '1', pid: 42 },
    secrets: ['topsecret'],
    stream,
  });
  logger
    .child({ module: 'db' })
    .error('failed postgres://a:topsecret@h/db', { err: new Error('auth topsecret') });
  await new Promise((r) => setImmediate(r));
  const line = JSON.parse(lines[0]!);
  expect(line).toMatchObject({
    level: 'error',
    msg: 'failed postgres://a:***@h/db',
    worker: '1',
    pid: 42,
    module: 'db',
  });
  expect(line.time).toEqual(expect.any(String));
  expect(lines.join('')).not.toContain('topsecret');
});

test('the batched stream hands lines on in one write, and flush() sends what is pending', async () => {
  const writes: string[] = [];
  const out = new Writable({
    write(c: Buffer, _e, cb) {
      writes.push(c.toString());
      cb();
    },
  });
  const batched = createBatchedStream(out);
  batched.write('a\n');
  batched.write('b\n');
  expect(writes).toEqual([]);
  batched.flush();
  expect(writes).toEqual(['a\nb\n']);
  batched.write('c\n');
  await new Promise((r) => setTimeout(r, 80));
  expect(writes).toEqual(['a\nb\n', 'c\n']);
});

test("the access line writer writes the logger's own line for child(meta).info, and nothing above info", async () => {
  const sink = () => {
    const text: string[] = [];
    const stream = createBatchedStream(
      new Writable({
        write(c: Buffer, _e, cb) {
          text.push(c.toString());
          cb();
        },
      }),
    );
    return { stream, text };
  };
  const options = { level: 'info' as const, base: { worker: '0', pid: 7 }, secrets: ['hunter22'] };
  const viaLogger = sink();
  const viaWriter = sink();
  const fields = {
    reqId: 'r1 hunter22',
    method: 'GET',
    route: '/x/:id',
    status: 200,
    durationMs: 1.2,
  };
  createLogger({ ...options, stream: viaLogger.stream })
    .child({ module: 'http' })
    .info('request', fields);
  createLineWriter({ ...options, stream: viaWriter.stream, meta: { module: 'http' } })(
    'request',
    fields,
  );
  createLineWriter({ ...options, level: 'warn', stream: viaWriter.stream, meta: {} })(
    'request',
    fields,
  );
  await new Promise((r) => setImmediate(r));
  viaLogger.stream.flush();
  viaWriter.stream.flush();
  const withoutTime = (t: string[]) => t.join('').replace(/"time":"[^"]+"/g, '"time":"T"');
  const line = withoutTime(viaWriter.text);
  expect(line.split('\n')).toHaveLength(2);
  expect(JSON.parse(line)).toEqual({
    ...fields,
    reqId: 'r1 ***',
    level: 'info',
    module: 'http',
    msg: 'request',
    pid: 7,
    worker: '0',
    time: 'T',
  });
  expect(line).toBe(withoutTime(viaLogger.text));
});

test('a line logged after shutdown ended the logger is dropped, not thrown (no crash on the way out)', async () => {
  const { lines, stream } = captured();
  const logger = createLogger({ level: 'info', base: {}, stream });
  logger.info('before');
  await flushLogger(logger, 1000);
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  process.prependListener('uncaughtException', onUncaught);
  try {
    logger.child({ module: 'db' }).warn('after');
    logger.info('after');
    await new Promise((r) => setTimeout(r, 20));
  } finally {
    process.removeListener('uncaughtException', onUncaught);
  }
  expect(uncaught).toEqual([]);
  expect(lines.join('')).toContain('"msg":"before"');
  expect(lines.join('')).not.toContain('"msg":"after"');
});
