/** Diagnose prints through the workers' own scrub: a password in every form it may take. */
import { scrub, secretForms } from '../../../../src/logger';

test('a secret is hidden in plain and URL-encoded form, and a URL password without being named', () => {
  const secrets = secretForms(['p@ss:w/rd']);
  expect(scrub('a p@ss:w/rd b p%40ss%3Aw%2Frd c', secrets)).toBe('a *** b *** c');
  expect(scrub('postgres://u:other-secret@h1:5432,h2:5433/db', secrets)).toBe(
    'postgres://u:***@h1:5432,h2:5433/db',
  );
});
