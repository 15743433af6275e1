/**
 * Each host of DATABASE_URL with its role, replication state and lag (src/db/hosts.ts
 * probeHosts, the probe a not-ready worker logs, here with the replication views read on the same
 * connection), and what in it can hurt on a failover: a standby listed first, asynchronous
 * replication (acknowledged writes lost with the old primary: docs/failover.md).
 */
import type { Config } from '../../config/config';
import { probeHosts, type HostState } from '../../db/hosts';
import type { ReplicationState, StandbySeen } from '../../db/replication';
import { check, type Check } from './report';

const kib = (bytes: number | null): string =>
  bytes === null ? '?' : bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KiB`;
const ms = (v: number | null): string => (v === null ? 'not reported' : `${Math.round(v)} ms`);

function standbySeen(s: StandbySeen): string {
  const who = s.applicationName || s.clientAddr || 'a standby';
  if (s.state === null) return `${who}: details hidden (the role needs pg_monitor)`;
  return `${who} ${s.state}, ${s.syncState}, replay lag ${ms(s.replayLagMs)} / ${kib(s.replayLagBytes)}`;
}

function describe(r: ReplicationState | undefined): string {
  if (!r) return 'replication state not readable by this role';
  if (r.kind === 'standby') {
    const since =
      r.sinceLastReplayMs === null
        ? 'no transaction replayed yet'
        : `last replayed transaction committed ${ms(r.sinceLastReplayMs)} ago`;
    return `WAL receiver ${r.receiver ?? 'not running or hidden'}; replayed to ${r.replayLsn ?? '?'} of ${r.receiveLsn ?? '?'} received (${kib(r.replayBehindBytes)} behind); ${since}`;
  }
  const names = r.synchronousStandbyNames || "''";
  const seen = r.standbys.length ? r.standbys.map(standbySeen).join('; ') : 'no standby connected';
  return `synchronous_standby_names=${names}, synchronous_commit=${r.synchronousCommit}; ${seen}`;
}

/** The figures behind a host's line (also the read hosts', ./read-hosts). */
export function hostData(h: HostState): Record<string, unknown> {
  return {
    host: h.address,
    role: h.role,
    error: h.error ?? null,
    replication: h.replication ?? null,
  };
}

function hostLine(h: HostState): Check {
  const data = hostData(h);
  if (h.role === 'unreachable')
    return check(
      'replication.host',
      'warn',
      h.role,
      null,
      `${h.address}: unreachable (${h.error})`,
      'see the path lines of this host',
      data,
    );
  if (h.role === 'read-only')
    return check(
      'replication.host',
      'warn',
      h.role,
      null,
      `${h.address}: a primary in read-only mode (transaction_read_only on); ${describe(h.replication)}`,
      'writes are refused (25006) until it is writable again',
      data,
    );
  return check(
    'replication.host',
    'ok',
    h.role,
    null,
    `${h.address}: ${describe(h.replication)}`,
    null,
    data,
  );
}

/** Whether commits on this primary wait for a standby, and why not when they do not. */
function asyncReason(r: Extract<ReplicationState, { kind: 'primary' }>): string | null {
  if (!r.synchronousStandbyNames.trim()) return 'synchronous_standby_names is empty';
  if (r.synchronousCommit === 'off' || r.synchronousCommit === 'local')
    return `synchronous_commit=${r.synchronousCommit}`;
  const visible = r.standbys.filter((s) => s.syncState !== null);
  if (visible.length && !visible.some((s) => s.syncState === 'sync' || s.syncState === 'quorum'))
    return `no standby is synchronous (sync_state ${[...new Set(visible.map((s) => s.syncState))].join(', ')})`;
  return null;
}

export async function checkReplication(config: Config): Promise<Check[]> {
  const hosts = await probeHosts(config.db.url, {
    ssl: config.db.ssl,
    timeoutS: config.db.connectTimeoutS,
    replication: true,
  });
  const checks = hosts.map(hostLine);
  const first = hosts[0]!;
  if (first.role === 'standby')
    checks.push(
      check(
        'replication.first_host',
        'warn',
        first.address,
        null,
        `the first host of DATABASE_URL, ${first.address}, is a standby: every new connection tries it first and is turned away`,
        hosts.length > 1
          ? 'list the primary first (the order does not matter for correctness, only for connect time)'
          : 'point DATABASE_URL at the primary (or list every host)',
        { host: first.address },
      ),
    );
  const primaries = hosts.filter((h) => h.role === 'primary' || h.role === 'read-only');
  if (primaries.length === 0) {
    if (hosts.some((h) => h.role === 'standby'))
      checks.push(
        check(
          'replication.primary',
          'fail',
          'none',
          null,
          'no host of DATABASE_URL is a primary: Keel waits, not ready, until one is promoted',
          'promote a standby, or add the primary to DATABASE_URL',
        ),
      );
    return checks;
  }
  // With no standby anywhere in sight (one server, no replication) there is nothing to judge.
  for (const p of primaries) {
    const r = p.replication;
    if (r?.kind !== 'primary') continue;
    if (r.standbys.length === 0 && !hosts.some((h) => h.role === 'standby')) continue;
    const why = asyncReason(r);
    const data = {
      host: p.address,
      synchronousStandbyNames: r.synchronousStandbyNames,
      synchronousCommit: r.synchronousCommit,
      syncStates: r.standbys.map((s) => s.syncState),
    };
    checks.push(
      why
        ? check(
            'replication.mode',
            'warn',
            'async',
            null,
            `${p.address}: replication is asynchronous (${why}): a crash failover can lose transfers already answered 201`,
            'set synchronous_standby_names (Patroni: synchronous_mode: true) and synchronous_commit=on, or accept the loss (docs/failover.md)',
            data,
          )
        : check(
            'replication.mode',
            'ok',
            'sync',
            null,
            `${p.address}: commits wait for a synchronous standby`,
            null,
            data,
          ),
    );
  }
  return checks;
}
