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

export interface WorkerMetrics {
  registry: client.Registry;
  observeRequest(method: string, route: string, status: number, seconds: number): void;
}

export function createWorkerMetrics({
  stats,
  worker,
  inFlight,
  poolMax,
}: {
  stats: DbStats;
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

  return {
    registry,
    observeRequest(method, route, status, seconds) {
      requests.inc({ method, route, status: String(status) });
      duration.observe({ method, route }, seconds);
    },
  };
}
