/**
 * What a server says about streaming replication, read on a connection to it: on a primary its
 * synchronous settings and each standby it streams to (pg_stat_replication), on a standby how far
 * it has received and replayed. `keel diagnose` lists it per host (src/db/hosts.ts probeHosts).
 * Without pg_read_all_stats (pg_monitor) the server hides a walsender's columns: they read null.
 */
import type postgres from 'postgres';

export interface StandbySeen {
  applicationName: string | null;
  clientAddr: string | null;
  /** streaming, catchup, ... ; null when hidden from this role. */
  state: string | null;
  /** sync, quorum, potential, async; null when hidden. */
  syncState: string | null;
  replayLagMs: number | null;
  /** WAL bytes the standby has not replayed yet. */
  replayLagBytes: number | null;
}

export type ReplicationState =
  | {
      kind: 'primary';
      synchronousStandbyNames: string;
      synchronousCommit: string;
      standbys: StandbySeen[];
    }
  | {
      kind: 'standby';
      receiveLsn: string | null;
      replayLsn: string | null;
      /** Received but not yet replayed. */
      replayBehindBytes: number | null;
      /** Since the last replayed transaction committed on the primary (not lag when it is idle). */
      sinceLastReplayMs: number | null;
      /** pg_stat_wal_receiver status (streaming, ...); null when none runs or hidden. */
      receiver: string | null;
    };

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export async function readReplication(
  sql: postgres.Sql,
  role: 'primary' | 'standby',
): Promise<ReplicationState> {
  if (role === 'standby') {
    const [r] = await sql<
      {
        receive_lsn: string | null;
        replay_lsn: string | null;
        behind: string | null;
        since_ms: string | null;
        receiver: string | null;
      }[]
    >`
      select pg_last_wal_receive_lsn()::text as receive_lsn,
             pg_last_wal_replay_lsn()::text as replay_lsn,
             pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::text as behind,
             (extract(epoch from now() - pg_last_xact_replay_timestamp()) * 1000)::text as since_ms,
             (select status from pg_stat_wal_receiver limit 1) as receiver`;
    return {
      kind: 'standby',
      receiveLsn: r?.receive_lsn ?? null,
      replayLsn: r?.replay_lsn ?? null,
      replayBehindBytes: num(r?.behind),
      sinceLastReplayMs: num(r?.since_ms),
      receiver: r?.receiver ?? null,
    };
  }
  const [settings] = await sql<{ names: string; commit: string }[]>`
    select current_setting('synchronous_standby_names') as names,
           current_setting('synchronous_commit') as commit`;
  const rows = await sql<
    {
      application_name: string | null;
      client_addr: string | null;
      state: string | null;
      sync_state: string | null;
      lag_ms: string | null;
      lag_bytes: string | null;
    }[]
  >`
    select application_name, client_addr::text as client_addr, state, sync_state,
           (extract(epoch from replay_lag) * 1000)::text as lag_ms,
           pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::text as lag_bytes
      from pg_stat_replication order by application_name`;
  return {
    kind: 'primary',
    synchronousStandbyNames: settings!.names,
    synchronousCommit: settings!.commit,
    standbys: rows.map((r) => ({
      applicationName: r.application_name,
      clientAddr: r.client_addr,
      state: r.state,
      syncState: r.sync_state,
      replayLagMs: num(r.lag_ms),
      replayLagBytes: num(r.lag_bytes),
    })),
  };
}
