/** Prometheus metrics of one worker (prom-client, its own registry: no global state). */
import client from 'prom-client';
import { CLOSE_REASONS, QUERY_OUTCOMES, RETRY_OUTCOMES, type DbStats } from './db-stats';

export interface WorkerMetrics {
  registry: client.Registry;
  observeRequest(method: string, route: string, status: number, seconds: number): void;
}

export function createWorkerMetrics({
  stats,
  worker,
}: {
  stats: DbStats;
  worker: string;
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

  const gauge = (name: string, help: string, read: () => number) =>
    new client.Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge('keel_db_connections_open', 'Database connections open in this worker', () => stats.open);
  gauge(
    'keel_db_connections_busy',
    'Database connections running a query or transaction',
    () => stats.busy,
  );
  gauge(
    'keel_db_connections_idle',
    'Database connections open and idle',
    () => stats.open - stats.busy,
  );
  gauge('keel_db_breaker_open', '1 while the database breaker is open (outage)', () =>
    stats.breakerState === 'open' ? 1 : 0,
  );
  gauge('keel_http_requests_in_flight', 'HTTP requests being served', () => stats.inFlight);

  const counterFrom = (
    name: string,
    help: string,
    label: string,
    keys: readonly string[],
    read: (k: string) => number,
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
  new client.Counter({
    name: 'keel_db_connections_opened_total',
    help: 'Database connections opened',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(stats.opened);
    },
  });
  counterFrom(
    'keel_db_connections_closed_total',
    'Database connections closed, by reason',
    'reason',
    CLOSE_REASONS,
    (k) => stats.closed[k as keyof DbStats['closed']],
  );
  counterFrom(
    'keel_db_queries_total',
    'Database units of work, by outcome',
    'outcome',
    QUERY_OUTCOMES,
    (k) => stats.queries[k as keyof DbStats['queries']],
  );
  counterFrom(
    'keel_db_retries_total',
    'Retries of database work after a transient failure',
    'kind',
    ['attempt'],
    () => stats.retries,
  );
  counterFrom(
    'keel_db_retry_outcomes_total',
    'Requests that needed retries, by final outcome',
    'outcome',
    RETRY_OUTCOMES,
    (k) => stats.retryOutcomes[k as keyof DbStats['retryOutcomes']],
  );
  new client.Counter({
    name: 'keel_db_breaker_openings_total',
    help: 'Times the database breaker opened',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(stats.breakerOpenings);
    },
  });

  return {
    registry,
    observeRequest(method, route, status, seconds) {
      requests.inc({ method, route, status: String(status) });
      duration.observe({ method, route }, seconds);
    },
  };
}
