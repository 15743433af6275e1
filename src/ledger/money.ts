/** Request schemas shared by the ledger routes (zod). */
import { z } from 'zod';

export const MAX_MONEY = Number.MAX_SAFE_INTEGER;

const money = z
  .number({ error: 'must be an integer number of minor units' })
  .int('must be an integer')
  .min(0, 'must not be negative')
  .max(MAX_MONEY, `must be at most ${MAX_MONEY}`);

const id = z
  .number({ error: 'must be a positive integer id' })
  .int('must be an integer')
  .min(1, 'must be a positive integer id')
  .max(MAX_MONEY, `must be at most ${MAX_MONEY}`);

export const newAccount = z.object({
  name: z
    .string({ error: 'must be a string' })
    .refine((s) => [...s].length >= 1, 'must not be empty')
    .refine((s) => [...s].length <= 100, 'must be at most 100 characters'),
  balance: money.optional(),
});

export const newTransfer = z
  .object({
    from: id,
    to: id,
    amount: money.min(1, 'must be greater than 0'),
  })
  .refine((t) => t.from !== t.to, { message: 'from and to must differ', path: ['to'] });

export const page = z.object({
  limit: z
    .string()
    .regex(/^\d{1,3}$/, 'must be an integer from 1 to 100')
    .transform(Number)
    .pipe(
      z
        .number()
        .min(1, 'must be an integer from 1 to 100')
        .max(100, 'must be an integer from 1 to 100'),
    )
    .optional(),
  after: z
    .string()
    .regex(/^(0|[1-9]\d{0,15})$/, 'must be an account id')
    .transform(Number)
    .pipe(z.number().max(MAX_MONEY, 'must be an account id'))
    .optional(),
});

export const pathId = z
  .string()
  .regex(/^[1-9]\d{0,15}$/, 'must be a positive integer id')
  .transform(Number)
  .pipe(z.number().max(MAX_MONEY, 'must be a positive integer id'));

export type NewAccount = z.infer<typeof newAccount>;
export type NewTransfer = z.infer<typeof newTransfer>;
export type Page = { limit: number; after: number };
