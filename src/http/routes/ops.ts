import Router from '@koa/router';
import type { Db } from '../../db/runner';
import type { Readiness } from '../../lifecycle/readiness';
import type { KeelState } from '../context';

export interface OpsDeps {
  db: Db;
  readiness: Readiness;
  /** Renders the Prometheus exposition; returns [contentType, text]. */
  metrics: (ctx: {
    authorization: string | undefined;
  }) => Promise<{ status: number; type: string; text: string }>;
}

export function opsRoutes(router: Router<KeelState>, deps: OpsDeps): void {
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });

  router.get('/readyz', async (ctx) => {
    if (deps.readiness.draining()) {
      ctx.status = 503;
      ctx.body = { status: 'unavailable', reason: 'shutting_down' };
      return;
    }
    // The contract's bound: `select 1` must answer within one second (and a path known to be
    // stalled answers 503 at once).
    if (deps.readiness.migrated() && (await deps.db.ready(1000))) {
      ctx.body = { status: 'ready' };
    } else {
      ctx.status = 503;
      ctx.body = { status: 'unavailable', reason: 'database' };
    }
  });

  router.get('/metrics', async (ctx) => {
    const out = await deps.metrics({ authorization: ctx.get('Authorization') || undefined });
    ctx.status = out.status;
    ctx.type = out.type;
    ctx.body = out.text;
  });
}
