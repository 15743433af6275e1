import { scrub } from '../../../../src/cli/diagnose/report';

test('scrub hides a secret in plain and URL-encoded form', () => {
  expect(scrub('a p@ss:w/rd b p%40ss%3Aw%2Frd c', ['p@ss:w/rd'])).toBe('a *** b *** c');
});
