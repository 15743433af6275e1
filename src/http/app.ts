/** The Koa application: middleware chain and routes. It never listens; the caller does. */
import Router from '@koa/router';
import Koa from 'koa';
import type { AblateLayer, Config } from '../config/config';
import { UnavailableError } from '../errors';
import type { Db } from '../db/runner';
import { idempotencyKey } from '../ledger/idempotency-key';
import type { Accounts } from '../ledger/accounts';
import type { Transfers } from '../ledger/transfers';
import type { Readiness } from '../lifecycle/readiness';
import type { LineWriter, Logger } from '../logger';
import { isApiPath } from './api-path';
import type { KeelContext, KeelState } from './context';
import { accessLog } from './middleware/access-log';
import { consistency } from './middleware/consistency';
import { deadline, plainDeadline } from './middleware/deadline';
import { drain } from './middleware/drain';
import { errorHandler } from './middleware/errors';
import { requestId } from './middleware/request-id';
import { accountReadShortcut, accountRoutes } from './routes/accounts';
import { opsRoutes, type OpsDeps } from './routes/ops';
import { transferRoutes } from './routes/transfers';

export interface AppDeps {
  config: Pick<Config, 'requestTimeoutMs' | 'bodyLimitBytes' | 'keepAliveHintS'>;
  logger: Logger;
  db: Db;
  accounts: Accounts;
  transfers: Transfers;
  readiness: Readiness;
  metrics: OpsDeps['metrics'];
  /** The OpenAPI document served at GET /openapi.json (`readOpenApi`, read once at start). */
  openapi: OpsDeps['openapi'];
  /** Mounted after the API's routes (the tests mount their test-only routes here). */
  routes?: readonly ExtraRoutes[];
  /** Writes the access log's line (default: the `http` child logger's `info`). */
  accessLine?: LineWriter;
  /** Called once per finished request (metrics). */
  onRequestDone?: (ctx: KeelContext, seconds: number) => void;
  /** Benchmarks only (KEEL_BENCH_ABLATE): layers left out, to measure what each costs. */
  ablate?: readonly AblateLayer[];
}

export type ExtraRoutes = (router: Router<KeelState>, deps: { db: Db }) => void;

export function createApp(deps: AppDeps): Koa<KeelState> {
  const { config, logger } = deps;
  const off = (layer: AblateLayer) => deps.ablate?.includes(layer) === true;
  const app = new Koa<KeelState>();
  // Errors are answered by our middleware; Koa's default handler would print to stderr.
  app.silent = true;
  app.on('error', () => undefined);

  const router = new Router<KeelState>();
  opsRoutes(router, {
    db: deps.db,
    readiness: deps.readiness,
    metrics: deps.metrics,
    openapi: deps.openapi,
  });
  accountRoutes(router, {
    accounts: deps.accounts,
    transfers: deps.transfers,
    bodyLimitBytes: config.bodyLimitBytes,
    zod: !off('zod'),
  });
  transferRoutes(router, { transfers: deps.transfers, bodyLimitBytes: config.bodyLimitBytes });
  for (const mount of deps.routes ?? []) mount(router, { db: deps.db });

  app.use(requestId());
  app.use(
    accessLog({
      logger: logger.child({ module: 'http' }),
      ...(deps.accessLine ? { line: deps.accessLine } : {}),
      onDone: deps.onRequestDone,
      lines: !off('access-log'),
    }),
  );
  app.use(errorHandler({ logger: logger.child({ module: 'http' }) }));
  app.use(drain({ readiness: deps.readiness, keepAliveHintS: config.keepAliveHintS }));
  app.use((off('deadline') ? plainDeadline : deadline)({ timeoutMs: config.requestTimeoutMs }));
  app.use(async (ctx, next) => {
    // Until the schema is in place (the database was not reachable at boot), the API is down.
    if (!deps.readiness.migrated() && isApiPath(ctx.path)) {
      // The contract: every answer to a transfer names the key to retry with (nothing applied).
      if (ctx.method === 'POST' && ctx.path.toLowerCase() === '/api/transfers') {
        const sent = ctx.get('Idempotency-Key');
        ctx.set('Idempotency-Key', idempotencyKey(sent === '' ? undefined : sent).header);
      }
      throw UnavailableError.of('dbNotMigrated');
    }
    await next();
  });
  app.use(consistency());
  if (off('router')) app.use(accountReadShortcut({ accounts: deps.accounts, zod: !off('zod') }));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
