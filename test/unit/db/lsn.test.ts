/** WAL positions and the Consistency-Token that carries one (src/db/reads/lsn.ts). */
import {
  encodeToken,
  later,
  normalizeInsertLsn,
  parseLsn,
  parseTokenHeader,
} from '../../../src/db/reads/lsn';

test('pg_lsn text reads as a 64-bit position', () => {
  expect(parseLsn('0/0')).toBe(0n);
  expect(parseLsn('16/B374D848')).toBe((0x16n << 32n) | 0xb374d848n);
  expect(parseLsn('FFFFFFFF/FFFFFFFF')).toBe(2n ** 64n - 1n);
  expect(() => parseLsn('16-B374D848')).toThrow();
});

test('an insert position right after a page header is the page boundary', () => {
  expect(normalizeInsertLsn(0x3000018n)).toBe(0x3000000n); // short header, 24 bytes
  expect(normalizeInsertLsn(0x3000028n)).toBe(0x3000000n); // a segment's long header, 40
  expect(normalizeInsertLsn(0x3000060n)).toBe(0x3000060n);
  expect(normalizeInsertLsn(0x3002018n)).toBe(0x3002000n);
});

test('a token is printable, at most 200 characters, and reads back as its position', () => {
  for (const p of [0n, 1n, parseLsn('16/B374D848'), 2n ** 64n - 1n, 'primary' as const]) {
    const t = encodeToken(p);
    expect(t).toMatch(/^[\x21-\x7e]{1,200}$/);
    expect(parseTokenHeader(t)).toBe(p);
  }
});

test('several tokens joined by ", " cover the latest of them; "primary" covers all', () => {
  const [a, b] = [encodeToken(5n), encodeToken(9n)];
  expect(parseTokenHeader(`${a}, ${b}`)).toBe(9n);
  expect(parseTokenHeader(`${b},${a}`)).toBe(9n);
  expect(parseTokenHeader(`${a}, ${encodeToken('primary')}`)).toBe('primary');
  expect(later(3n, 'primary')).toBe('primary');
});

test.each([
  '',
  'x',
  `${encodeToken(1n)}, `,
  'a'.repeat(201),
  Buffer.from('keel1:zz').toString('base64url'),
  Buffer.from('other:0000000000000001').toString('base64url'),
])('not a token of this server: %j', (v) => {
  expect(parseTokenHeader(v)).toBeNull();
});
