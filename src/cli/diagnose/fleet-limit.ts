/**
 * The limits a booting worker's budget check needs, read with diagnose's own clients and
 * queries: PgBouncer or not (only asked when a separate direct URL is set), then the server's
 * slots through the direct URL, or PgBouncer's max_client_conn through its admin console.
 */
import type { Config } from '../../config/config';
import type { FleetLimit } from '../../lifecycle/budget-guard';
import { createClients } from './connections';
import { readPoolerConfig, refusesStartupTimeout } from './pooler';
import { readServerLimit } from './server';

export async function readFleetLimit(config: Config): Promise<FleetLimit> {
  const clients = createClients(config.db);
  try {
    const direct = config.db.migrationUrl !== config.db.url;
    if (direct && (await refusesStartupTimeout(config.db.url, clients))) {
      const admin = config.db.poolerAdminUrl;
      const max = admin ? Number((await readPoolerConfig(admin, clients)).max_client_conn) : NaN;
      return {
        kind: 'pgbouncer',
        maxClientConn: Number.isFinite(max) ? max : null,
        migrationsDirect: true,
      };
    }
    return { kind: 'server', limit: await readServerLimit(clients.open(config.db.migrationUrl)) };
  } finally {
    await clients.closeAll();
  }
}
