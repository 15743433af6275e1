import { createMessageReader, firstMessage } from '../../../src/db/wire';

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function errorResponse(severity: string, code: string, text: string): Buffer {
  const field = (t: string, v: string) => Buffer.from(`${t}${v}\0`, 'utf8');
  return message(
    'E',
    Buffer.concat([
      field('S', severity),
      field('V', severity),
      field('C', code),
      field('M', text),
      Buffer.from([0]),
    ]),
  );
}

test('firstMessage tells a startup, an SSL request and a cancel request apart', () => {
  const first = (code: number) => {
    const b = Buffer.alloc(8);
    b.writeInt32BE(8, 0);
    b.writeInt32BE(code, 4);
    return b;
  };
  expect(firstMessage(first(196608))).toBe('startup');
  expect(firstMessage(first(80877103))).toBe('ssl-request');
  expect(firstMessage(first(80877102))).toBe('cancel');
  expect(firstMessage(Buffer.from([0x16, 0x03, 0x01, 0, 0, 0, 0, 0]))).toBe('unknown');
  expect(firstMessage('text')).toBe('unknown');
});

test('the reader sees ReadyForQuery and FATAL errors wherever the chunks are cut', () => {
  const stream = Buffer.concat([
    message('R', Buffer.alloc(4)),
    message('Z', Buffer.from('I')),
    message('D', Buffer.alloc(10000, 1)),
    errorResponse('ERROR', '23505', 'duplicate key'),
    message('Z', Buffer.from('T')),
    errorResponse('FATAL', '57P01', 'terminating connection due to administrator command'),
    message('Z', Buffer.from('E')),
  ]);
  for (const size of [1, 2, 3, 5, 7, 64, stream.length]) {
    const seen: string[] = [];
    const read = createMessageReader({
      ready: (status) => seen.push(`Z${String.fromCharCode(status)}`),
      fatal: (code, msg) => seen.push(`${code} ${msg}`),
    });
    for (let i = 0; i < stream.length; i += size) read(stream.subarray(i, i + size));
    expect(seen).toEqual([
      'ZI',
      'ZT',
      '57P01 terminating connection due to administrator command',
      'ZE',
    ]);
  }
});

test('the reader starts mid-chunk when told to (after the one-byte SSL answer)', () => {
  const seen: number[] = [];
  const read = createMessageReader({ ready: (s) => seen.push(s), fatal: () => undefined });
  read(Buffer.concat([Buffer.from('N'), message('Z', Buffer.from('I'))]), 1);
  expect(seen).toEqual([0x49]);
});
