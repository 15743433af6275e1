/** Prometheus metrics of one worker (prom-client, its own registry: no global state). */
import client from 'prom-client';
import {
  ATTEMPT_OUTCOMES,
  CLOSE_REASONS,
  DB_ROLES,
  QUERY_OUTCOMES,
  SHED_REASONS,
  RETRY_OUTCOMES,
  type DbStats,
} from './db-stats';
import { READ_TARGETS, WAIT_OUTCOMES, type ReadStats } from './read-stats';

/** What the metrics see of the standbys (src/db/reads), read at each scrape. */
export interface ReadsView {
  stats: ReadStats;
  /** DB_READ_MAX_LAG_MS in seconds: the replica lag bound; null without standbys. */
  lagBoundS: number | null;
  standbys(): ReadonlyArray<{
    address: string;
    inReadSet: boolean;
    /** How far behind the standby may be now (Infinity when unknown). */
    lagS: number;
    pool: DbStats;
  }>;
}

export interface WorkerMetrics {
  registry: client.Registry;
  observeRequest(method: string, route: string, status: number, seconds: number): void;
}

export function createWorkerMetrics({
  stats,
  worker,
  inFlight,
  poolMax,
  reads,
}: {
  stats: DbStats;
  reads?: ReadsView;
  worker: string;
  /** HTTP requests being served (counted by the connection tracker). */
  inFlight: () => number;
  /** DB_POOL_MAX: the connections this worker may open (alerts compare open with it). */
  poolMax?: number;
}): WorkerMetrics {
  const registry = new client.Registry();
  registry.setDefaultLabels({ worker });
  client.collectDefaultMetrics({ register: registry });

  const requests = new client.Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route template and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const duration = new client.Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route template',
    labelNames: ['method', 'route'],
    // From 2.5 ms (a cached read) to 10 s (the default request deadline).
    buckets: [0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });

  // Every figure below is read from `stats` when scraped: all of them in the same tick, so one
  // scrape is a consistent snapshot (open == busy + idle).
  const gauge = (name: string, help: string, read: () => number) =>
    new client.Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge('keel_db_connections_open', 'Database connections open (busy + idle)', () => stats.open);
  gauge(
    'keel_db_connections_busy',
    'Database connections running a query or holding a transaction',
    () => stats.busy,
  );
  gauge(
    'keel_db_connections_idle',
    'Database connections open and waiting for work',
    () => stats.idle,
  );
  gauge('keel_db_breaker_open', '1 while the database breaker is open (an outage)', () =>
    stats.breakerState === 'open' ? 1 : 0,
  );
  gauge('keel_http_requests_in_flight', 'HTTP requests being served', inFlight);
  gauge(
    'keel_db_connecting',
    'Database connect attempts in progress (the pool; probes and cancels not included)',
    () => stats.connecting,
  );
  gauge(
    'keel_db_connecting_max',
    'The most database connect attempts in progress at once since the worker started',
    () => stats.connectingMax,
  );
  if (poolMax !== undefined)
    gauge(
      'keel_db_pool_max',
      'Database connections this worker may open (DB_POOL_MAX)',
      () => poolMax,
    );

  const counter = (name: string, help: string, read: () => number) =>
    new client.Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  const counterBy = <K extends string>(
    name: string,
    help: string,
    label: string,
    keys: readonly K[],
    read: (k: K) => number,
  ) =>
    new client.Counter({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        this.reset();
        for (const k of keys) this.inc({ [label]: k }, read(k));
      },
    });
  counter(
    'keel_db_connections_opened_total',
    'Database connections opened (connect attempts included)',
    () => stats.opened,
  );
  counterBy(
    'keel_db_connect_attempts_total',
    'Pool connect attempts by outcome: opened, refused, silent (no answer), too_many_clients',
    'outcome',
    ATTEMPT_OUTCOMES,
    (k) => stats.connectAttempts[k],
  );
  counterBy(
    'keel_db_connections_closed_total',
    'Database connections closed, by reason',
    'reason',
    CLOSE_REASONS,
    (k) => stats.closed[k],
  );
  counterBy(
    'keel_db_queries_total',
    'Database units of work (a query or a transaction, each attempt), by outcome',
    'outcome',
    QUERY_OUTCOMES,
    (k) => stats.queries[k],
  );
  counterBy(
    'keel_db_shed_total',
    'Units of work refused before touching the database (answered 503, never applied), by reason',
    'reason',
    SHED_REASONS,
    (k) => stats.shed[k],
  );
  counter(
    'keel_db_retries_total',
    'Attempts repeated after a transient database failure',
    () => stats.retries,
  );
  counterBy(
    'keel_db_retry_outcomes_total',
    'Units of work that needed retries, by final outcome',
    'outcome',
    RETRY_OUTCOMES,
    (k) => stats.retryOutcomes[k],
  );
  counter(
    'keel_db_lock_wait_cuts_total',
    'Units of work answered 503 because they kept waiting for locks (a migration, a long transaction) past the budget',
    () => stats.lockWaitCuts,
  );
  counter(
    'keel_db_breaker_openings_total',
    'Times the database breaker opened (outages)',
    () => stats.breakerOpenings,
  );
  counterBy(
    'keel_db_role_changes_total',
    'Times the database this worker writes to changed role (a failover counts two: to standby or read_only, then to primary)',
    'to',
    DB_ROLES,
    (k) => stats.roleChanges[k],
  );

  if (reads) readMetrics(registry, reads);

  return {
    registry,
    observeRequest(method, route, status, seconds) {
      requests.inc({ method, route, status: String(status) });
      duration.observe({ method, route }, seconds);
    },
  };
}

/** Where reads went, token waits, and each standby's lag and pool (docs/metrics.md). */
function readMetrics(registry: client.Registry, reads: ReadsView): void {
  const { stats } = reads;
  new client.Counter({
    name: 'keel_db_reads_total',
    help: 'Reads by where they ran: standby, primary (no standby configured, or a token naming the primary), fallback (standbys configured, none could serve it)',
    labelNames: ['target'],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of READ_TARGETS) this.inc({ target: t }, stats.reads[t]);
    },
  });
  new client.Counter({
    name: 'keel_db_read_token_waits_total',
    help: 'Reads with a Consistency-Token that waited for a standby to replay it, by outcome (timeout: read on the primary)',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      this.reset();
      for (const o of WAIT_OUTCOMES) this.inc({ outcome: o }, stats.waits[o]);
    },
  });
  new client.Counter({
    name: 'keel_db_read_token_wait_seconds_total',
    help: 'Seconds reads spent waiting for a standby to replay their Consistency-Token',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(stats.waitSeconds);
    },
  });
  if (reads.lagBoundS === null) return;
  const bound = reads.lagBoundS;
  new client.Gauge({
    name: 'keel_db_read_lag_bound_seconds',
    help: 'The replica lag bound (DB_READ_MAX_LAG_MS): no read without a token is older than this',
    registers: [registry],
    collect() {
      this.set(bound);
    },
  });
  const perStandby = (
    name: string,
    help: string,
    read: (s: ReturnType<ReadsView['standbys']>[number]) => number,
  ) =>
    new client.Gauge({
      name,
      help,
      labelNames: ['standby'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of reads.standbys()) this.set({ standby: s.address }, read(s));
      },
    });
  perStandby(
    'keel_db_standby_lag_seconds',
    'How far behind the primary each standby may be now, from its last replay position (+Inf when it does not answer)',
    (s) => s.lagS,
  );
  perStandby('keel_db_standby_in_read_set', '1 while the standby serves reads', (s) =>
    s.inReadSet ? 1 : 0,
  );
  perStandby(
    'keel_db_standby_connections_open',
    'Connections open to each standby (its pool)',
    (s) => s.pool.open,
  );
  new client.Counter({
    name: 'keel_db_standby_queries_total',
    help: 'Units of work on each standby pool (each attempt), by outcome',
    labelNames: ['standby', 'outcome'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of reads.standbys())
        for (const o of QUERY_OUTCOMES)
          this.inc({ standby: s.address, outcome: o }, s.pool.queries[o]);
    },
  });
}
