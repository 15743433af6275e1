/**
 * A real streaming-replication pair for failover tests: a primary (a local cluster from
 * ./postgres) and a hot standby cloned from it with `pg_basebackup -R`, the same binaries the
 * suite uses. The standby streams through a fault proxy (`link`), so a test can cut replication
 * (`link.setMode('partition')`) and show what asynchronous replication loses.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createFaultProxy, type FaultProxy } from './fault-proxy';
import {
  findBinDir,
  freePort,
  localHandle,
  psql,
  runAs,
  startTestPostgres,
  SUPERPASS,
  SUPERUSER,
  type TestPostgres,
} from './postgres';
import { untilValue } from './wait';

const execFileAsync = promisify(execFile);

/** One server of the pair; which one is the primary changes with `promote()`. */
export interface PgNode {
  readonly name: 'a' | 'b';
  readonly port: number;
  url(database?: string): string;
  /** `immediate` is a crash: no shutdown checkpoint, no last WAL sent to the standby. */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  start(): Promise<void>;
  /** `pg_ctl promote`: a standby becomes a primary (waits until it accepts writes). */
  promote(): Promise<void>;
  inRecovery(): Promise<boolean>;
}

export interface ReplicationPair {
  /** The first primary (`a`) and its standby (`b`). */
  primary: PgNode;
  standby: PgNode;
  /** The standby's replication connection runs through this proxy. */
  link: FaultProxy;
  /** Resolves once the standby streams (and, when synchronous, is the sync standby). */
  streaming(): Promise<void>;
  destroy(): Promise<void>;
}

export interface ReplicationOptions {
  /** `synchronous_standby_names = '*'` and `synchronous_commit = on` on the primary, once the standby streams. */
  synchronous?: boolean;
  /** A database created on the primary before the standby is cloned (so both have it). */
  database?: string;
}

export async function startReplicationPair(
  opts: ReplicationOptions = {},
): Promise<ReplicationPair> {
  const primaryPg = await startTestPostgres({
    localOnly: true,
    settings: {
      wal_level: 'replica',
      max_wal_senders: 10,
      hot_standby: 'on',
      // Asynchronous, as Railway's HA template; `synchronous` turns it on once the standby
      // streams (before that, every commit would wait for a standby that does not exist).
      synchronous_commit: 'off',
      // Report a dead standby (a cut link) within seconds, not the default minute.
      wal_sender_timeout: "'5s'",
    },
  });
  let standbyDir: string | null = null;
  let link: FaultProxy | null = null;
  try {
    if (opts.database) await primaryPg.createDatabase(opts.database);
    link = await createFaultProxy({ targetHost: '127.0.0.1', targetPort: primaryPg.port });
    standbyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-pg-standby-'));
    const standby = await cloneStandby(standbyDir, link.port);
    const primary = node('a', primaryPg, null);
    const pair: ReplicationPair = {
      primary,
      standby: node('b', standby.pg, standby.data),
      link,
      async streaming() {
        await untilValue(
          () =>
            psql<{ state: string; sync_state: string }>(
              primary.url(),
              'select state, sync_state from pg_stat_replication',
            ),
          (rows) =>
            rows.some(
              (r) => r.state === 'streaming' && (!opts.synchronous || r.sync_state === 'sync'),
            ),
          30000,
          'the standby streaming',
        );
      },
      async destroy() {
        await Promise.allSettled([standby.pg.destroy(), primaryPg.destroy(), link?.close()]);
      },
    };
    if (opts.synchronous) {
      // `on`: a commit is acknowledged once the standby has flushed its WAL.
      await psql(primary.url(), `alter system set synchronous_standby_names = '*'`);
      await psql(primary.url(), `alter system set synchronous_commit = 'on'`);
      await psql(primary.url(), 'select pg_reload_conf()');
    }
    await pair.streaming();
    return pair;
  } catch (err) {
    await primaryPg.destroy();
    await link?.close();
    if (standbyDir) fs.rmSync(standbyDir, { recursive: true, force: true });
    throw err;
  }
}

/** `pg_basebackup -R` through `linkPort`, then the standby's own port, started hot. */
export async function cloneStandby(
  dir: string,
  linkPort: number,
): Promise<{ pg: TestPostgres; data: string }> {
  const bin = findBinDir();
  const user = runAs();
  if (user) fs.chownSync(dir, user.uid, user.gid);
  const data = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  const env = { ...process.env, LC_ALL: 'C', LANG: 'C', PGPASSWORD: SUPERPASS };
  const run = (cmd: string, args: string[]) =>
    execFileAsync(path.join(bin, cmd), args, { ...(user ?? {}), env, timeout: 60000 });
  // -R writes standby.signal and a primary_conninfo (with this port) into postgresql.auto.conf.
  await run('pg_basebackup', [
    ...['-h', '127.0.0.1', '-p', String(linkPort), '-U', SUPERUSER, '-D', data],
    ...['-R', '-X', 'stream', '--no-sync', '-c', 'fast'],
  ]);
  const port = await freePort();
  fs.appendFileSync(
    path.join(data, 'postgresql.conf'),
    [
      `port = ${port}`,
      `unix_socket_directories = '${dir}'`,
      // Promoted, it must not wait for a standby of its own that does not exist.
      "synchronous_standby_names = ''",
      '',
    ].join('\n'),
  );
  const pg = localHandle({ run, dir, data, logFile, port });
  await pg.start();
  return { pg, data };
}

function node(name: 'a' | 'b', pg: TestPostgres, data: string | null): PgNode {
  const n: PgNode = {
    name,
    port: pg.port,
    url: (db) => pg.url(db),
    stop: (mode) => pg.stop(mode),
    start: () => pg.start(),
    async promote() {
      if (!data) throw new Error(`node ${name} was never a standby`);
      const user = runAs();
      await execFileAsync(path.join(findBinDir(), 'pg_ctl'), ['-D', data, '-w', 'promote'], {
        ...(user ?? {}),
        timeout: 60000,
      });
      await untilValue(
        () => n.inRecovery(),
        (r) => !r,
        30000,
        `node ${name} promoted`,
      );
    },
    async inRecovery() {
      const [row] = await psql<{ r: boolean }>(pg.url(), 'select pg_is_in_recovery() as r');
      return row!.r;
    },
  };
  return n;
}
