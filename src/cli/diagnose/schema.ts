/**
 * The documented shape of `keel diagnose --json` (docs/diagnose.md), as a zod schema: field
 * names here are a contract; add fields, never rename or remove them within `keel-diagnose/1`.
 */
import { z } from 'zod';

const status = z.enum(['ok', 'warn', 'fail']);
const death = z.enum(['fin', 'rst', 'rst-on-write', 'silence', 'server-timeout', 'server-closed']);

const checkSchema = z.strictObject({
  id: z.string().regex(/^(path|replication|latency|server|pooler|budget|keel|idle)\.[a-z_]+$/),
  section: z.enum(['path', 'replication', 'latency', 'server', 'pooler', 'budget', 'keel', 'idle']),
  status,
  value: z.union([z.number(), z.string(), z.null()]),
  unit: z.enum(['ms', 's', 'connections']).nullable(),
  summary: z.string().min(1),
  fix: z.string().nullable(),
  data: z.record(z.string(), z.unknown()),
});

const sample = z.strictObject({
  idleMs: z.number(),
  alive: z.boolean(),
  death: death.nullable(),
  diedAtMs: z.number().nullable(),
  keepAliveS: z.number().nullable(),
});

const idleProbeSchema = z.strictObject({
  cutoffMs: z.number().nullable(),
  bracketMs: z.tuple([z.number(), z.number()]).nullable(),
  death: death.nullable(),
  serverSide: z.boolean(),
  keepalive: z
    .strictObject({
      keepAliveS: z.number(),
      idleMs: z.number(),
      survived: z.boolean(),
      death: death.nullable(),
    })
    .nullable(),
  recommendedIdleCutoffS: z.number().int().nullable(),
  maxMs: z.number(),
  connectionsPerRound: z.number().int(),
  rounds: z.number().int(),
  toleranceMs: z.number(),
  samples: z.array(sample),
});

export const reportSchema = z.strictObject({
  schema: z.literal('keel-diagnose/1'),
  keelVersion: z.string(),
  startedAt: z.iso.datetime(),
  durationMs: z.number().int().nonnegative(),
  target: z.strictObject({ url: z.string(), migrationUrl: z.string(), embedded: z.boolean() }),
  status,
  exitCode: z.union([z.literal(0), z.literal(1), z.literal(2)]),
  counts: z.strictObject({ ok: z.number().int(), warn: z.number().int(), fail: z.number().int() }),
  checks: z.array(checkSchema).min(1),
  idleProbe: idleProbeSchema.nullable(),
});
