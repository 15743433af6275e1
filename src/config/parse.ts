/** Environment variables: one zod schema each, with the allowed values spelled out for errors. */
import { z } from 'zod';
import { parseDbUrl } from './db-url';

export type RawEnv = Readonly<Record<string, string | undefined>>;

export class ConfigError extends Error {
  readonly exitCode = 78; // EX_CONFIG from sysexits.h: PM2 is told not to restart on it.
  constructor(
    readonly variable: string,
    value: string,
    problem: string,
    allowed: string,
  ) {
    super(
      `invalid configuration: ${variable}=${JSON.stringify(value)} ${problem}; allowed: ${allowed}`,
    );
    this.name = 'ConfigError';
  }
}

interface Spec<T> {
  schema: z.ZodType<T>;
  allowed: string;
  /** Hide the value in error messages (it may hold a password). */
  secret?: boolean;
}

const int = (min: number, max: number): Spec<number> => ({
  schema: z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'is not an integer')
    .transform(Number)
    .pipe(z.number().min(min, `is below ${min}`).max(max, `is above ${max}`)),
  allowed: `an integer from ${min} to ${max}`,
});

const bool: Spec<boolean> = {
  schema: z
    .string()
    .trim()
    .toLowerCase()
    .refine(
      (v) => ['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'].includes(v),
      'is not a boolean',
    )
    .transform((v) => ['true', '1', 'yes', 'on'].includes(v)),
  allowed: 'true or false',
};

const oneOf = <const T extends readonly [string, ...string[]]>(values: T): Spec<T[number]> => ({
  schema: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(values, { error: 'is not one of the allowed values' })),
  allowed: values.join(', '),
});

const postgresUrl: Spec<string> = {
  schema: z
    .string()
    .trim()
    .superRefine((v, ctx) => {
      // Parsed as the driver will: a bad percent-escape here would crash every worker later.
      const parts = parseDbUrl(v);
      if ('problem' in parts) ctx.addIssue({ code: 'custom', message: parts.problem });
    }),
  allowed:
    'postgres://user:password@host:port/database[?sslmode=require] (host may be h1:5432,h2:5432)',
  secret: true,
};

/** DATABASE_READ_URL: the same rules, with the standby values of target_session_attrs. */
const readPostgresUrl: Spec<string> = {
  ...postgresUrl,
  schema: z
    .string()
    .trim()
    .superRefine((v, ctx) => {
      const parts = parseDbUrl(v, 'reads');
      if ('problem' in parts) ctx.addIssue({ code: 'custom', message: parts.problem });
    }),
};

const text = (max: number): Spec<string> => ({
  schema: z.string().min(1, 'is empty').max(max, `is longer than ${max} characters`),
  allowed: `1 to ${max} characters`,
});

/**
 * Layers the benchmark switches off one at a time (KEEL_BENCH_ABLATE; `npm run bench -- --reads
 * --ablate`) to measure what each costs per answer (docs/benchmarks.md, the ablation table).
 * Benchmarks only: each one removes a guarantee Keel makes.
 */
export const ABLATE_LAYERS = [
  'socket',
  'stall-watch',
  'access-log',
  'zod',
  'deadline',
  'metrics',
  'router',
  'admission',
  'pm2-io',
] as const;
export type AblateLayer = (typeof ABLATE_LAYERS)[number];

const layerList: Spec<AblateLayer[]> = {
  schema: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim().toLowerCase())
        .filter((s) => s !== ''),
    )
    .pipe(
      z.array(z.enum(ABLATE_LAYERS, { error: 'names a layer the benchmark cannot switch off' })),
    ),
  allowed: `a comma-separated list of ${ABLATE_LAYERS.join(', ')}`,
};

const sizeUnits: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2 };
const byteSize: Spec<number> = {
  schema: z
    .string()
    .trim()
    .toLowerCase()
    .regex(/^\d+\s*(b|kb|mb)?$/, 'is not a size')
    .transform((v) => {
      const m = /^(\d+)\s*(b|kb|mb)?$/.exec(v);
      return Number(m?.[1]) * (sizeUnits[m?.[2] ?? 'b'] ?? 1);
    })
    .pipe(
      z
        .number()
        .min(1, 'is zero')
        .max(64 * 1024 ** 2, 'is above 64mb'),
    ),
  allowed: 'a size like 100kb, 1mb or 2048 (bytes), up to 64mb',
};

/** name → [spec, default]. A default of undefined means "optional, no default". */
const specs = {
  NODE_ENV: [oneOf(['production', 'development', 'test']), 'production'],
  HOST: [text(255), '0.0.0.0'],
  PORT: [int(0, 65535), '3000'],
  WEB_CONCURRENCY: [int(1, 256), undefined],
  NODE_APP_INSTANCE: [text(16), undefined],
  DATABASE_URL: [postgresUrl, undefined],
  DATABASE_MIGRATION_URL: [postgresUrl, undefined],
  DATABASE_UNPOOLED_URL: [postgresUrl, undefined],
  // Standbys GET requests read from (src/db/reads); the two bounds default in config.ts.
  DATABASE_READ_URL: [readPostgresUrl, undefined],
  DB_READ_WAIT_MS: [int(0, 10000), undefined],
  DB_READ_MAX_LAG_MS: [int(100, 600000), undefined],
  KEEL_DB_PORT: [int(1, 65535), '5433'],
  KEEL_DB_PASSWORD: [{ ...text(200), secret: true }, 'keel-local'],
  DB_POOL_MAX: [int(1, 1000), '10'],
  DB_MAX_CONNECTIONS: [int(1, 100000), undefined],
  DB_IDLE_CUTOFF_S: [int(2, 86400), '300'],
  DB_IDLE_TIMEOUT_S: [int(0, 86400), undefined],
  DB_MAX_LIFETIME_S: [int(0, 86400), undefined],
  DB_KEEPALIVE_S: [int(1, 7200), '20'],
  DB_CONNECT_TIMEOUT_S: [int(1, 300), '10'],
  DB_STATEMENT_TIMEOUT_MS: [int(0, 3600000), '2000'],
  DB_IDLE_IN_TX_TIMEOUT_MS: [int(0, 3600000), '5000'],
  DB_PREPARE: [bool, 'true'],
  DB_SSL: [oneOf(['false', 'disable', 'require', 'prefer', 'verify-full']), undefined],
  DB_RETRY_BUDGET_MS: [int(0, 600000), '5000'],
  // A request's statement waits this long for a lock, then its whole unit is retried (0 = off).
  DB_LOCK_TIMEOUT_MS: [int(0, 3600000), '1000'],
  // Migrations (src/db/migrate.ts): each lock waited for at most this long, each statement at
  // most that long, and 55P03 retried with backoff for the budget; the folder of .sql files.
  KEEL_MIGRATION_LOCK_TIMEOUT_MS: [int(10, 600000), '500'],
  KEEL_MIGRATION_STATEMENT_TIMEOUT_MS: [int(0, 86400000), '600000'],
  KEEL_MIGRATION_BUDGET_MS: [int(0, 86400000), '300000'],
  KEEL_MIGRATIONS_DIR: [text(4096), undefined],
  // The contract step (file name) the migrate command applies without a PM2 daemon to ask.
  KEEL_CONTRACT_CONFIRM: [text(255), undefined],
  REQUEST_TIMEOUT_MS: [int(100, 600000), '10000'],
  SHUTDOWN_TIMEOUT_MS: [int(100, 600000), '10000'],
  PM2_KILL_TIMEOUT_MS: [int(200, 600000), undefined],
  READY_WAIT_MS: [int(0, 600000), '10000'],
  KEEP_ALIVE_TIMEOUT_MS: [int(1000, 600000), '65000'],
  HEADERS_TIMEOUT_MS: [int(100, 600000), '10000'],
  REQUEST_RECEIVE_TIMEOUT_MS: [int(100, 3600000), '30000'],
  HTTP_MAX_CONNECTIONS: [int(1, 1000000), '1000'],
  LOG_LEVEL: [oneOf(['error', 'warn', 'info', 'http', 'debug']), 'info'],
  BODY_LIMIT: [byteSize, '100kb'],
  METRICS_TOKEN: [{ ...text(512), secret: true }, undefined],
  // The fleet: replicas of this service, and Railway's deploy windows (old and new side by side).
  KEEL_REPLICAS: [int(1, 1000), '1'],
  // At boot, once the database answers: refuse (78) a fleet that can never fit, warn, or skip.
  // Its default depends on the database (config.ts, budgetCheckDefault).
  KEEL_BUDGET_CHECK: [oneOf(['refuse', 'warn', 'off']), undefined],
  RAILWAY_ENVIRONMENT: [text(255), undefined],
  RAILWAY_DEPLOYMENT_DRAINING_SECONDS: [int(0, 86400), undefined],
  RAILWAY_DEPLOYMENT_OVERLAP_SECONDS: [int(0, 86400), undefined],
  // PgBouncer's admin console (database `pgbouncer`), read by `keel diagnose` only.
  DB_POOLER_ADMIN_URL: [postgresUrl, undefined],
  KEEL_REQUIRE_DATABASE_URL: [bool, 'false'],
  KEY_SWEEP_INTERVAL_MS: [int(100, 3600000), '60000'],
  // The embedded `db` app (src/cli/embedded-db.ts): its data directory (relative to the checkout)
  // and how long a fast shutdown may take before SIGKILL.
  KEEL_DATA_DIR: [text(4096), '.data/postgres'],
  // As root, where the `db` app puts Postgres binaries and data the `postgres` user cannot reach.
  KEEL_STATE_DIR: [text(4096), '/var/lib/keel'],
  KEEL_DB_STOP_TIMEOUT_MS: [int(100, 600000), '10000'],
  // Set by Railway in every deployment: its presence means "this is not a laptop".
  RAILWAY_ENVIRONMENT_ID: [text(200), undefined],
  // Benchmarks only: layers switched off to measure their cost (ABLATE_LAYERS above).
  KEEL_BENCH_ABLATE: [layerList, undefined],
} as const;

type Specs = typeof specs;
type Parsed = {
  [K in keyof Specs]: Specs[K][1] extends string
    ? Specs[K][0] extends Spec<infer T>
      ? T
      : never
    : Specs[K][0] extends Spec<infer T>
      ? T | undefined
      : never;
};

type Env = Omit<Parsed, 'DB_SSL'> & { DB_SSL: DbSsl | undefined };
type Name = keyof Specs;

/**
 * Every variable and its default (undefined: none, or one config.ts derives): the README's
 * configuration table is checked against this (test/unit/config/readme.test.ts).
 */
export function variableDefaults(): ReadonlyMap<string, string | undefined> {
  return new Map(Object.entries(specs).map(([name, [, fallback]]) => [name, fallback]));
}

/** Every variable, validated; the first bad one throws a ConfigError naming it. */
export function parseEnv(env: RawEnv): Env {
  return parseVars(env, Object.keys(specs) as Name[]) as Env;
}

/**
 * Only the variables a caller reads (the ecosystem file, the embedded database), with the same
 * specs, defaults and errors as the worker: a bad value is the same error everywhere.
 */
export function parseVars<K extends Name>(env: RawEnv, names: readonly K[]): Pick<Env, K> {
  const out: Record<string, unknown> = {};
  for (const name of names) {
    const [spec, fallback] = specs[name] as readonly [Spec<unknown>, string | undefined];
    const given = env[name];
    const value = given === undefined || given === '' ? fallback : given;
    if (value === undefined) {
      out[name] = undefined;
      continue;
    }
    const result = spec.schema.safeParse(value);
    if (!result.success) {
      const problem = result.error.issues[0]?.message ?? 'is invalid';
      throw new ConfigError(name, spec.secret ? '<hidden>' : value, problem, spec.allowed);
    }
    out[name] = result.data;
  }
  if ('DB_SSL' in out) {
    const ssl = out.DB_SSL as string | undefined;
    out.DB_SSL = ssl === undefined ? undefined : ssl === 'false' || ssl === 'disable' ? false : ssl;
  }
  return out as Pick<Env, K>;
}

type DbSsl = false | 'require' | 'prefer' | 'verify-full';
