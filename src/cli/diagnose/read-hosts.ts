/**
 * Each standby of DATABASE_READ_URL (docs/replicas.md): its role and replay position, asked on a
 * short-lived connection as for DATABASE_URL's hosts (src/db/hosts.ts probeHosts). A standby that
 * does not answer or is not in recovery (promoted) is out of the workers' read set: reads go to
 * the primary, so it is a warning, never a failure.
 */
import type { Config } from '../../config/config';
import { probeHosts, type HostState } from '../../db/hosts';
import { hostData } from './replication';
import { check, type Check } from './report';

function readHostLine(h: HostState, maxLagMs: number): Check {
  const line = (status: 'ok' | 'warn', summary: string, fix: string | null) =>
    check(
      'replication.read_host',
      status,
      h.role,
      null,
      `read host ${h.address}: ${summary}`,
      fix,
      hostData(h),
    );
  if (h.role === 'unreachable')
    return line(
      'warn',
      `unreachable (${h.error}): the workers read from the primary instead`,
      'check the host and port in DATABASE_READ_URL, and that the standby runs',
    );
  if (h.role !== 'standby')
    return line(
      'warn',
      'not a standby (not in recovery: a primary, or a promoted standby): the workers leave it out of the read set',
      'point DATABASE_READ_URL at standbys of the primary in DATABASE_URL',
    );
  const r = h.replication?.kind === 'standby' ? h.replication : null;
  const stuck = r !== null && r.receiver !== null && r.receiver !== 'streaming';
  return line(
    stuck ? 'warn' : 'ok',
    `a standby, WAL receiver ${r?.receiver ?? 'not running or hidden'}, replayed to ${r?.replayLsn ?? '?'} (${r?.replayBehindBytes ?? '?'} bytes received but not replayed); it serves reads while within ${maxLagMs} ms of the primary`,
    stuck
      ? 'the standby is not streaming from a primary: it falls behind and leaves the read set'
      : null,
  );
}

export async function checkReadHosts(config: Config): Promise<Check[]> {
  const reads = config.reads;
  if (!reads) return [];
  const hosts = await Promise.all(
    reads.urls.map((url) =>
      probeHosts(url, {
        ssl: config.db.ssl,
        timeoutS: config.db.connectTimeoutS,
        replication: true,
      }),
    ),
  );
  return hosts.flat().map((h) => readHostLine(h, reads.maxLagMs));
}
