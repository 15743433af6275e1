import { Writable } from 'node:stream';
import { streamDrained } from '../../../src/lifecycle/flush';

/** Like PM2's replacement for a worker's stdout: every write lands a little later. */
function slowStream(written: string[]) {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      setTimeout(() => {
        if (chunk.length) written.push(chunk.toString('utf8'));
        cb();
      }, 5);
    },
  });
}

test('resolves only after every earlier write has landed', async () => {
  const written: string[] = [];
  const stream = slowStream(written);
  for (let i = 0; i < 5; i++) stream.write(`line ${i}\n`);
  await streamDrained(stream, 5000);
  expect(written).toHaveLength(5);
});

test('gives up at its timeout when the stream never completes a write', async () => {
  const stuck = new Writable({ write: () => undefined });
  stuck.write('x');
  await expect(streamDrained(stuck, 20)).resolves.toBeUndefined();
});
