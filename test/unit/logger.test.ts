import { Writable } from 'node:stream';
import { createBatchedStream, createLogger, scrub } from '../../src/logger';

test('scrub removes URL passwords and literal secrets', () => {
  expect(scrub('connect postgres://u:p%40ss@h:5/db failed')).toBe(
    'connect postgres://u:***@h:5/db failed',
  );
  expect(scrub('password authentication failed: hunter22', ['hunter22'])).toBe(
    'password authentication failed: ***',
  );
});

test('log lines are JSON with level, time, msg and the base fields; secrets scrubbed everywhere', async () => {
  const lines: string[] = [];
  const stream = new Writable({
    write(c: Buffer, _e, cb) {
      lines.push(c.toString());
      cb();
    },
  });
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
