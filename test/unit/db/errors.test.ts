import { classify, isTransient } from '../../../src/db/errors';

test.each([
  ['ECONNRESET', 'connection'],
  ['EPIPE', 'connection'],
  ['ECONNREFUSED', 'connection'],
  ['CONNECTION_CLOSED', 'connection'],
  ['CONNECTION_DESTROYED', 'connection'],
  ['CONNECT_TIMEOUT', 'connection'],
  ['KEEL_STALLED', 'connection'],
  ['57P01', 'connection'],
  ['57P02', 'connection'],
  ['57P03', 'connection'],
  ['08006', 'connection'],
  ['08P01', 'connection'],
  ['53300', 'connection'],
  ['EMFILE', 'connection'],
  ['ENFILE', 'connection'],
  ['25006', 'connection'],
  ['TARGET_SESSION_ATTRS', 'connection'],
  ['40001', 'retryable'],
  ['40P01', 'retryable'],
  ['57014', 'timeout'],
  ['23505', 'constraint'],
  ['23514', 'constraint'],
  ['22003', 'constraint'],
  ['CONNECTION_ENDED', 'shutdown'],
  ['42P01', 'other'],
])('%s is %s', (code, kind) => {
  expect(classify(Object.assign(new Error('x'), { code }))).toBe(kind);
});

test('errors without a code are other and not transient', () => {
  expect(classify(new Error('boom'))).toBe('other');
  expect(classify(undefined)).toBe('other');
  expect(isTransient(new TypeError('x'))).toBe(false);
  expect(isTransient({ code: '40P01' })).toBe(true);
});
