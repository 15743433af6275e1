import type { z } from 'zod';
import { ValidationError } from '../errors';

/** Parses with a zod schema; failures become 400 invalid_request with per-field details. */
export function validate<S extends z.ZodType>(
  schema: S,
  input: unknown,
  what: string,
): z.output<S> {
  const result = schema.safeParse(input, { reportInput: true });
  if (result.success) return result.data;
  const details = result.error.issues.map((i) => ({
    path: i.path.map(String).join('.') || what,
    message: i.code === 'invalid_type' && i.input === undefined ? 'is required' : i.message,
  }));
  const first = details[0];
  const where = first && first.path !== what ? `${what}: ${first.path}` : what;
  throw new ValidationError(first ? `${where} ${first.message}` : `invalid ${what}`, details);
}
