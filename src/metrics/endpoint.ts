/** `/metrics`: the Prometheus exposition, behind an optional bearer token. */
import { timingSafeEqual } from 'node:crypto';
import type client from 'prom-client';
import { AppError } from '../errors';
import { fixNaN } from './exposition';

export interface MetricsEndpointDeps {
  /** Renders the exposition text (this worker's, or the whole machine's). */
  render: () => Promise<string>;
  contentType: string;
  token: string | null;
}

function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function createMetricsEndpoint(deps: MetricsEndpointDeps) {
  return async ({ authorization }: { authorization: string | undefined }) => {
    if (deps.token !== null) {
      const m = /^Bearer (.+)$/.exec(authorization ?? '');
      if (!m?.[1] || !sameToken(m[1], deps.token)) {
        throw new AppError('unauthorized');
      }
    }
    return { status: 200, type: deps.contentType, text: await deps.render() };
  };
}

export function registryRenderer(registry: client.Registry) {
  return {
    render: async () => fixNaN(await registry.metrics()),
    contentType: registry.contentType,
  };
}
