/** The runner's steps against the database: one attempt at one file, and what is applied. */
import type postgres from 'postgres';
import type { Logger } from '../logger';
import type { MigrationFile } from './migration-file';

/** One attempt at one file: a transaction with its bookkeeping row, or its one statement. */
export async function apply(
  conn: postgres.ReservedSql,
  file: MigrationFile,
  log: Logger,
): Promise<void> {
  if (file.transaction) {
    // A reserved connection has no begin(): the transaction is spelled out.
    await conn.unsafe('begin');
    try {
      await conn.unsafe(file.text);
      await conn`insert into keel_migrations (name) values (${file.name})`;
      await conn.unsafe('commit');
    } catch (err) {
      await conn.unsafe('rollback').catch(() => undefined);
      throw err;
    }
    return;
  }
  // A failed concurrent build (a lock timeout included) leaves an INVALID index behind, which
  // `IF NOT EXISTS` would take for done: it is dropped and built again.
  if (file.index) {
    const [invalid] = await conn<[{ name: string }?]>`
      select c.oid::regclass::text as name
        from pg_index i join pg_class c on c.oid = i.indexrelid
       where c.oid = to_regclass(${file.index}) and not i.indisvalid`;
    if (invalid) {
      log.warn('invalid index left by a failed concurrent build: rebuilding', {
        migration: file.name,
        index: invalid.name,
      });
      await conn.unsafe(`drop index concurrently if exists ${file.index}`);
    }
  }
  await conn.unsafe(file.statement);
  await conn`insert into keel_migrations (name) values (${file.name}) on conflict do nothing`;
}

export async function appliedNames(conn: postgres.ReservedSql): Promise<Set<string> | null> {
  const [t] = await conn<[{ exists: boolean }]>`
    select to_regclass('keel_migrations') is not null as exists`;
  if (!t.exists) return null;
  const rows = await conn<{ name: string }[]>`select name from keel_migrations`;
  return new Set(rows.map((r) => r.name));
}

/** INVALID indexes anywhere: a build that failed outside Keel's files is named, not ignored. */
export async function reportInvalidIndexes(conn: postgres.ReservedSql, log: Logger): Promise<void> {
  const rows = await conn<{ index: string }[]>`
    select indexrelid::regclass::text as index from pg_index where not indisvalid`;
  for (const r of rows) {
    log.warn(
      'invalid index (a failed concurrent build?): rebuilt only if a pending file builds it',
      {
        index: r.index,
      },
    );
  }
}
