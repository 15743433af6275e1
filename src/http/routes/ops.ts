import { readFileSync } from 'node:fs';
import path from 'node:path';
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
  /** The OpenAPI document's bytes, read once at start (`readOpenApi`); served as they are. */
  openapi: Buffer;
}

/** docs/openapi.json, from src/http/routes (ts-jest) and dist/http/routes alike. */
export const OPENAPI_FILE = path.resolve(__dirname, '..', '..', '..', 'docs', 'openapi.json');

/** Reads the document once; a missing or unparsable file fails the start, not a request. */
export function readOpenApi(file: string = OPENAPI_FILE): Buffer {
  const bytes = readFileSync(file);
  const doc = JSON.parse(bytes.toString('utf8')) as { openapi?: unknown };
  if (typeof doc.openapi !== 'string') throw new Error(`${file} is not an OpenAPI document`);
  return bytes;
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

  router.get('/openapi.json', (ctx) => {
    ctx.type = 'application/json';
    ctx.body = deps.openapi;
  });

  router.get('/metrics', async (ctx) => {
    const out = await deps.metrics({ authorization: ctx.get('Authorization') || undefined });
    ctx.status = out.status;
    ctx.type = out.type;
    ctx.body = out.text;
  });
}
