/**
 * Each standby of DATABASE_READ_URL (docs/replicas.md): its role and replay position, asked on a
 * short-lived connection as for DATABASE_URL's hosts (src/db/hosts.ts probeHosts). A standby that
 * does not answer or is not in recovery (promoted) is out of the workers' read set: reads go to
 * the primary, so it is a warning, never a failure.
 */
import type { Config } from '../../config/config';
import { probeHosts, type HostState } from '../../db/hosts';
import { check, type Check } from './report';

function readHostLine(h: HostState, maxLagMs: number): Check {
  const data = {
    host: h.address,
    role: h.role,
    error: h.error ?? null,
    replication: h.replication ?? null,
  };
  if (h.role === 'unreachable')
    return check(
      'replication.read_host',
      'warn',
      h.role,
      null,
      `read host ${h.address}: unreachable (${h.error}): the workers read from the primary instead`,
      'check the host and port in DATABASE_READ_URL, and that the standby runs',
      data,
    );
  if (h.role !== 'standby')
    return check(
      'replication.read_host',
      'warn',
      h.role,
      null,
      `read host ${h.address}: not a standby (not in recovery: a primary, or a promoted standby): the workers leave it out of the read set`,
      'point DATABASE_READ_URL at standbys of the primary in DATABASE_URL',
      data,
    );
  const r = h.replication?.kind === 'standby' ? h.replication : null;
  const receiver = r?.receiver ?? 'not running or hidden';
  const behind = r?.replayBehindBytes ?? null;
  return check(
    'replication.read_host',
    r && r.receiver !== null && r.receiver !== 'streaming' ? 'warn' : 'ok',
    h.role,
    null,
    `read host ${h.address}: a standby, WAL receiver ${receiver}, replayed to ${r?.replayLsn ?? '?'} (${behind ?? '?'} bytes received but not replayed); it serves reads while within ${maxLagMs} ms of the primary`,
    r && r.receiver !== null && r.receiver !== 'streaming'
      ? 'the standby is not streaming from a primary: it falls behind and leaves the read set'
      : null,
    data,
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
