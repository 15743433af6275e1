/**
 * Configuration: parsed once from an environment object, validated, derived and frozen.
 * `process.env` is read only by the composition roots, which pass it here.
 */
import os from 'node:os';
import { dbUrlParts, withHost, withSessionAttrs } from './db-url';
import { ConfigError, parseEnv, type AblateLayer, type RawEnv } from './parse';

export { ConfigError, parseVars, type AblateLayer } from './parse';
export { redactUrl } from './db-url';

export type LogLevel = 'error' | 'warn' | 'info' | 'http' | 'debug';

export interface DbConfig {
  /** Pooled URL used by the request path (may point at PgBouncer). */
  readonly url: string;
  /** Direct URL for migrations and advisory locks. */
  readonly migrationUrl: string;
  /** True when no DATABASE_URL was given and the embedded `db` app serves the database. */
  readonly embedded: boolean;
  readonly poolMax: number;
  readonly idleCutoffS: number;
  /** [min, max) seconds; each connection rolls its own value in this range. */
  readonly idleTimeoutS: readonly [number, number] | null;
  readonly maxLifetimeS: readonly [number, number];
  readonly keepAliveS: number;
  readonly connectTimeoutS: number;
  readonly statementTimeoutMs: number;
  /** The server ends a session idle inside a transaction this long (its locks go with it). */
  readonly idleInTransactionTimeoutMs: number;
  readonly prepare: boolean;
  readonly ssl: false | 'require' | 'prefer' | 'verify-full';
  /** Per-request time budget for database work including retries. */
  readonly retryBudgetMs: number;
  /** A request's statement waits at most this long for a lock (55P03, retried); 0 = no limit. */
  readonly lockTimeoutMs: number;
  /** PgBouncer's admin console URL (`keel diagnose` reads SHOW POOLS / SHOW CONFIG there). */
  readonly poolerAdminUrl: string | null;
}

/** Standbys for reads (DATABASE_READ_URL): one pool per host, same settings as the primary's. */
export interface ReadsConfig {
  /** One URL per standby host (target_session_attrs dropped: the health check decides). */
  readonly urls: readonly string[];
  /** Longest a read with a Consistency-Token waits for a standby to replay it. */
  readonly waitMs: number;
  /** A standby further behind than this leaves the read set (reads without a token). */
  readonly maxLagMs: number;
  /** How often each standby is asked its role and position. */
  readonly checkMs: number;
}

// 200 ms: a standby streaming on the same network replays a commit within a few ms; waiting
// longer than a primary read takes only adds latency.
const READ_WAIT_MS = 200;
// 3 s: "a few seconds" (contract v1.2); the health check (every 500 ms) keeps it exact.
const READ_MAX_LAG_MS = 3000;
const READ_CHECK_MS = 500;

export interface MigrationConfig {
  /** The folder of .sql files; null: the project's own `migrations/`. */
  readonly dir: string | null;
  /** `lock_timeout` of every migration statement: the longest the queue behind it waits. */
  readonly lockTimeoutMs: number;
  /** `statement_timeout` of every migration statement (0 = none). */
  readonly statementTimeoutMs: number;
  /** How long a migration keeps retrying lock timeouts (55P03) before giving up. */
  readonly budgetMs: number;
  /** A contract step's file name, applied although no PM2 daemon here says the fleet is ready. */
  readonly contractConfirm: string | null;
}

export interface PlatformConfig {
  /** Replicas of this service (each runs `instances` workers). */
  readonly replicas: number;
  /** Running on Railway (RAILWAY_ENVIRONMENT is set there). */
  readonly railway: boolean;
  readonly drainingS: number | null;
  readonly overlapS: number | null;
  /** PM2's kill_timeout as the ecosystem passes it down (null outside PM2). */
  readonly killTimeoutMs: number | null;
  /** What a booting worker does with a connection budget over the server's limit. */
  readonly budgetCheck: 'refuse' | 'warn' | 'off';
}

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly instances: number;
  readonly instanceId: string;
  readonly db: DbConfig;
  /** Null when DATABASE_READ_URL is unset: every read goes to the primary. */
  readonly reads: ReadsConfig | null;
  readonly migrations: MigrationConfig;
  readonly shutdownTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly readyWaitMs: number;
  readonly keepAliveTimeoutMs: number;
  /** A request's headers must have arrived this long after its first byte, or 408. */
  readonly headersTimeoutMs: number;
  /** The whole request (headers and body) must have arrived within this, or 408. */
  readonly requestReceiveTimeoutMs: number;
  /** Open client connections a worker accepts at once; more are closed on arrival. */
  readonly maxConnections: number;
  /** Seconds advertised in `Keep-Alive: timeout=N`: never more than the drain deadline. */
  readonly keepAliveHintS: number;
  readonly logLevel: LogLevel;
  readonly bodyLimitBytes: number;
  readonly metricsToken: string | null;
  /** How often each worker tries to sweep expired idempotency keys. */
  readonly keySweepIntervalMs: number;
  readonly platform: PlatformConfig;
  /** Benchmarks only (KEEL_BENCH_ABLATE): layers switched off to measure their cost. */
  readonly benchAblate: readonly AblateLayer[];
}

/** Per-connection idle/lifetime bounds that stay safely below the proxy's idle cutoff. */
export function deriveTimers(
  cutoffS: number,
  idle: number | undefined,
  life: number | undefined,
): { idle: readonly [number, number] | null; life: readonly [number, number] } {
  // Close an idle connection at 50-70 % of the cutoff (rolled per connection): the proxy never
  // gets to kill one of ours, and connections don't all close in the same second.
  const idleRange = idle === 0 ? null : idle ? fixed(idle) : jitter(cutoffS * 0.5, cutoffS * 0.7);
  // Replace every connection, busy or not, at 80-95 % of the cutoff (30-60 min, as postgres.js
  // does, when the cutoff is an hour or more): later than the idle timer, still under the cutoff.
  const lifeRange = life
    ? fixed(life)
    : cutoffS >= 3600
      ? jitter(1800, 3600)
      : jitter(Math.max(cutoffS * 0.8, 1), Math.max(cutoffS * 0.95, 1));
  return { idle: idleRange, life: lifeRange };
}

function fixed(v: number): readonly [number, number] {
  return [v, v];
}
function jitter(lo: number, hi: number): readonly [number, number] {
  return [round(lo), round(hi)];
}
function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/**
 * KEEL_BUDGET_CHECK when unset: `refuse`, but `warn` with the embedded database, which is a
 * laptop's, not a fleet's: one worker per CPU may overrun its 100 slots under load, which is
 * worth a warning, not a refusal (unless asked for).
 */
export function budgetCheckDefault(embedded: boolean): PlatformConfig['budgetCheck'] {
  return embedded ? 'warn' : 'refuse';
}

/** PM2 workers per machine: WEB_CONCURRENCY, or one per core. */
export function webConcurrency(given: number | undefined): number {
  return given ?? Math.max(1, os.availableParallelism());
}

export function loadConfig(env: RawEnv): Config {
  const raw = parseEnv(env);
  const instances = webConcurrency(raw.WEB_CONCURRENCY);

  let poolMax = raw.DB_POOL_MAX;
  if (raw.DB_MAX_CONNECTIONS !== undefined) {
    poolMax = Math.floor(raw.DB_MAX_CONNECTIONS / instances);
    if (poolMax < 1) {
      throw new ConfigError(
        'DB_MAX_CONNECTIONS',
        String(raw.DB_MAX_CONNECTIONS),
        `is smaller than WEB_CONCURRENCY=${instances}: each worker needs at least one connection`,
        `an integer >= ${instances}, or fewer instances`,
      );
    }
  }

  const cutoff = raw.DB_IDLE_CUTOFF_S;
  for (const name of ['DB_IDLE_TIMEOUT_S', 'DB_MAX_LIFETIME_S'] as const) {
    const v = raw[name];
    if (v !== undefined && v !== 0 && v >= cutoff) {
      throw new ConfigError(
        name,
        String(v),
        `is not below DB_IDLE_CUTOFF_S=${cutoff}: the platform would cut the connection first`,
        `an integer from 1 to ${cutoff - 1} (or unset to derive one)`,
      );
    }
  }
  if (raw.DB_MAX_LIFETIME_S === 0) {
    throw new ConfigError(
      'DB_MAX_LIFETIME_S',
      '0',
      'would keep connections forever',
      `1..${cutoff - 1}`,
    );
  }
  const timers = deriveTimers(cutoff, raw.DB_IDLE_TIMEOUT_S, raw.DB_MAX_LIFETIME_S);

  const embedded = raw.DATABASE_URL === undefined;
  // The embedded database is for a checkout on a laptop; a deployment must say where its data is.
  const deployment = raw.RAILWAY_ENVIRONMENT_ID
    ? 'RAILWAY_ENVIRONMENT_ID is set'
    : raw.KEEL_REQUIRE_DATABASE_URL
      ? 'KEEL_REQUIRE_DATABASE_URL=1'
      : null;
  if (embedded && deployment) {
    throw new ConfigError(
      'DATABASE_URL',
      '',
      `is not set, and ${deployment}: a deployment never falls back to the embedded database`,
      'set DATABASE_URL=postgres://user:password@host:port/database (on Railway: a reference to the Postgres service, ${{Postgres.DATABASE_URL}})',
    );
  }
  const url = withSessionAttrs(
    raw.DATABASE_URL ?? embeddedUrl(raw.KEEL_DB_PORT, raw.KEEL_DB_PASSWORD),
  );
  const migrationUrl = withSessionAttrs(
    raw.DATABASE_MIGRATION_URL ?? raw.DATABASE_UNPOOLED_URL ?? url,
  );

  // Under PM2 the ecosystem passes its kill_timeout down, so the arithmetic is checked at start.
  if (raw.PM2_KILL_TIMEOUT_MS !== undefined && raw.SHUTDOWN_TIMEOUT_MS >= raw.PM2_KILL_TIMEOUT_MS) {
    throw new ConfigError(
      'SHUTDOWN_TIMEOUT_MS',
      String(raw.SHUTDOWN_TIMEOUT_MS),
      `is not below PM2's kill_timeout (${raw.PM2_KILL_TIMEOUT_MS} ms): PM2 would SIGKILL mid-drain`,
      `an integer below ${raw.PM2_KILL_TIMEOUT_MS}`,
    );
  }

  // Node refuses a headers timeout longer than the whole-request timeout.
  if (raw.HEADERS_TIMEOUT_MS > raw.REQUEST_RECEIVE_TIMEOUT_MS) {
    throw new ConfigError(
      'HEADERS_TIMEOUT_MS',
      String(raw.HEADERS_TIMEOUT_MS),
      `is above REQUEST_RECEIVE_TIMEOUT_MS=${raw.REQUEST_RECEIVE_TIMEOUT_MS}: the headers are part of the request`,
      `an integer from 100 to ${raw.REQUEST_RECEIVE_TIMEOUT_MS}`,
    );
  }

  const config: Config = {
    host: raw.HOST,
    port: raw.PORT,
    instances,
    instanceId: raw.NODE_APP_INSTANCE ?? '0',
    db: {
      url,
      migrationUrl,
      embedded,
      poolMax,
      idleCutoffS: cutoff,
      idleTimeoutS: timers.idle,
      maxLifetimeS: timers.life,
      keepAliveS: raw.DB_KEEPALIVE_S,
      connectTimeoutS: raw.DB_CONNECT_TIMEOUT_S,
      statementTimeoutMs: raw.DB_STATEMENT_TIMEOUT_MS,
      idleInTransactionTimeoutMs: raw.DB_IDLE_IN_TX_TIMEOUT_MS,
      prepare: raw.DB_PREPARE,
      ssl: raw.DB_SSL ?? sslFromUrl(url),
      retryBudgetMs: raw.DB_RETRY_BUDGET_MS,
      lockTimeoutMs: raw.DB_LOCK_TIMEOUT_MS,
      poolerAdminUrl: raw.DB_POOLER_ADMIN_URL ?? null,
    },
    reads: raw.DATABASE_READ_URL
      ? {
          urls: readUrls(raw.DATABASE_READ_URL),
          waitMs: raw.DB_READ_WAIT_MS ?? READ_WAIT_MS,
          maxLagMs: raw.DB_READ_MAX_LAG_MS ?? READ_MAX_LAG_MS,
          checkMs: READ_CHECK_MS,
        }
      : null,
    migrations: {
      dir: raw.KEEL_MIGRATIONS_DIR ?? null,
      lockTimeoutMs: raw.KEEL_MIGRATION_LOCK_TIMEOUT_MS,
      statementTimeoutMs: raw.KEEL_MIGRATION_STATEMENT_TIMEOUT_MS,
      budgetMs: raw.KEEL_MIGRATION_BUDGET_MS,
      contractConfirm: raw.KEEL_CONTRACT_CONFIRM ?? null,
    },
    shutdownTimeoutMs: raw.SHUTDOWN_TIMEOUT_MS,
    requestTimeoutMs: raw.REQUEST_TIMEOUT_MS,
    readyWaitMs: raw.READY_WAIT_MS,
    keepAliveTimeoutMs: raw.KEEP_ALIVE_TIMEOUT_MS,
    headersTimeoutMs: raw.HEADERS_TIMEOUT_MS,
    requestReceiveTimeoutMs: raw.REQUEST_RECEIVE_TIMEOUT_MS,
    maxConnections: raw.HTTP_MAX_CONNECTIONS,
    keepAliveHintS: keepAliveHint(raw.KEEP_ALIVE_TIMEOUT_MS, raw.SHUTDOWN_TIMEOUT_MS),
    logLevel: raw.LOG_LEVEL,
    bodyLimitBytes: raw.BODY_LIMIT,
    metricsToken: raw.METRICS_TOKEN ?? null,
    keySweepIntervalMs: raw.KEY_SWEEP_INTERVAL_MS,
    benchAblate: raw.KEEL_BENCH_ABLATE ?? [],
    platform: {
      replicas: raw.KEEL_REPLICAS,
      railway: raw.RAILWAY_ENVIRONMENT !== undefined,
      drainingS: raw.RAILWAY_DEPLOYMENT_DRAINING_SECONDS ?? null,
      overlapS: raw.RAILWAY_DEPLOYMENT_OVERLAP_SECONDS ?? null,
      killTimeoutMs: raw.PM2_KILL_TIMEOUT_MS ?? null,
      budgetCheck: raw.KEEL_BUDGET_CHECK ?? budgetCheckDefault(embedded),
    },
  };
  return deepFreeze(config);
}

/**
 * The idle time a client is told it may keep a socket: at most the drain deadline, so when the
 * deadline ends the sockets still idle, each has been idle longer than its client was allowed
 * (a client that honours the hint, as undici does with a 2 s margin, has already let go). The
 * server's own idle timer stays at KEEP_ALIVE_TIMEOUT_MS, above any balancer's in front.
 */
export function keepAliveHint(keepAliveTimeoutMs: number, shutdownTimeoutMs: number): number {
  return Math.max(1, Math.floor(Math.min(keepAliveTimeoutMs, shutdownTimeoutMs) / 1000));
}

/** Each host of the read URL on its own, without target_session_attrs. */
function readUrls(url: string): string[] {
  return dbUrlParts(url, 'reads').hosts.map(({ host, port }) => {
    const one = withHost(url, host, port);
    const q = one.indexOf('?');
    if (q < 0) return one;
    const params = new URLSearchParams(one.slice(q + 1));
    params.delete('target_session_attrs');
    const rest = params.toString();
    return rest ? `${one.slice(0, q)}?${rest}` : one.slice(0, q);
  });
}

function embeddedUrl(port: number, password: string): string {
  // The embedded `db` app and the workers read the same KEEL_DB_PORT / KEEL_DB_PASSWORD.
  // The application role `keel` (no superuser; it owns the database), made by the `db` app.
  return `postgres://keel:${encodeURIComponent(password)}@127.0.0.1:${port}/keel`;
}

function sslFromUrl(url: string): DbConfig['ssl'] {
  const mode = dbUrlParts(url).params.get('sslmode');
  if (mode === 'require' || mode === 'prefer' || mode === 'verify-full') return mode;
  if (mode === 'verify-ca') return 'verify-full';
  return false;
}

function deepFreeze<T extends object>(o: T): T {
  for (const v of Object.values(o)) if (v && typeof v === 'object') deepFreeze(v);
  return Object.freeze(o);
}
