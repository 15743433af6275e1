/**
 * The text check on a parsed body (src/http/json-text.ts): what it finds, where, and that a body
 * nested far deeper than any request of the API needs is refused by name instead of overflowing
 * the stack (JSON.parse itself accepts 20,000 nested arrays).
 */
import { findUnstorableText, MAX_JSON_DEPTH } from '../../../src/http/json-text';

function nested(depth: number, inner = '0'): unknown {
  return JSON.parse('['.repeat(depth) + inner + ']'.repeat(depth));
}

test('the first unstorable string in document order, with its dotted path', () => {
  expect(findUnstorableText({ a: 'ok', b: ['x', { c: 'y\u0000' }], d: '\ud800' })).toEqual({
    path: 'b.1.c',
    message: 'must not contain U+0000',
  });
  expect(findUnstorableText({ ok: 1, 'k\udc00': 2 })).toEqual({
    path: 'body',
    message: 'has a key that must not contain an unpaired surrogate (not valid Unicode)',
  });
  expect(findUnstorableText({ a: { b: { 'k\u0000': 1 } } })).toMatchObject({ path: 'a.b' });
  expect(findUnstorableText('\ud83d\ude00 paired')).toBeNull();
  expect(findUnstorableText({ a: [1, true, null, 'fine'] })).toBeNull();
});

test(`nesting up to ${MAX_JSON_DEPTH} levels is walked; one more is refused, naming the field`, () => {
  expect(findUnstorableText(nested(MAX_JSON_DEPTH))).toBeNull();
  expect(findUnstorableText(nested(MAX_JSON_DEPTH, '"\\u0000"'))).toMatchObject({
    message: 'must not contain U+0000',
  });
  expect(findUnstorableText(nested(MAX_JSON_DEPTH + 1))).toEqual({
    path: 'body',
    message: `is nested deeper than ${MAX_JSON_DEPTH} levels of arrays and objects`,
  });
  expect(findUnstorableText({ name: 'x', pad: { deep: nested(MAX_JSON_DEPTH) } })).toEqual({
    path: 'pad',
    message: `is nested deeper than ${MAX_JSON_DEPTH} levels of arrays and objects`,
  });
});

test('20,000 nested arrays (valid JSON) are refused, not a stack overflow', () => {
  expect(findUnstorableText(nested(20_000))).toMatchObject({ path: 'body' });
  const wide = { items: Array.from({ length: 50_000 }, (_, i) => ({ [`k${i}`]: [String(i)] })) };
  expect(findUnstorableText(wide)).toBeNull();
});
