/**
 * Schema migrations: plain SQL files applied by umzug, inside a Postgres advisory lock so that
 * N workers booting at once apply each file exactly once. Each file runs in one transaction
 * together with its bookkeeping row.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import postgres from 'postgres';
import { Umzug, type UmzugStorage } from 'umzug';
import type { Logger } from '../logger';

// An arbitrary constant that names "keel migrations" among advisory locks.
const MIGRATION_LOCK_KEY = 7_240_611;

export interface MigrateDeps {
  url: string;
  ssl: false | 'require' | 'prefer' | 'verify-full';
  logger: Logger;
  dir: string;
  applicationName?: string;
}

export async function migrate(deps: MigrateDeps): Promise<string[]> {
  const sql = postgres(deps.url, {
    max: 1,
    ssl: deps.ssl,
    // Migrations may legitimately run long: no statement timeout, but a bounded connect.
    connect_timeout: 10,
    onnotice: () => undefined,
    connection: { application_name: deps.applicationName ?? 'keel:migrate' },
  });
  const log = deps.logger.child({ module: 'migrate' });
  try {
    const conn = await sql.reserve();
    try {
      await conn`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
      try {
        await conn`
          create table if not exists keel_migrations (
            name text primary key,
            applied_at timestamptz not null default now()
          )`;
        const storage: UmzugStorage = {
          async executed() {
            const rows = await conn<
              { name: string }[]
            >`select name from keel_migrations order by name`;
            return rows.map((r) => r.name);
          },
          // Logged by the migration itself, in the migration's own transaction.
          async logMigration() {},
          async unlogMigration({ name }) {
            await conn`delete from keel_migrations where name = ${name}`;
          },
        };
        const umzug = new Umzug({
          migrations: {
            glob: ['*.sql', { cwd: deps.dir }],
            resolve: ({ name, path: file }) => ({
              name,
              up: async () => {
                const text = await fs.readFile(file ?? path.join(deps.dir, name), 'utf8');
                // A reserved connection has no begin(): the transaction is spelled out.
                await conn.unsafe('begin');
                try {
                  await conn.unsafe(text);
                  await conn`insert into keel_migrations (name) values (${name})`;
                  await conn.unsafe('commit');
                } catch (err) {
                  await conn.unsafe('rollback').catch(() => undefined);
                  throw err;
                }
              },
            }),
          },
          storage,
          logger: undefined,
        });
        const applied = await umzug.up();
        for (const m of applied) log.info('migration applied', { migration: m.name });
        return applied.map((m) => m.name);
      } finally {
        await conn`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.catch(() => undefined);
      }
    } finally {
      conn.release();
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** The project's migrations folder, from src/db (ts-jest) and dist/db (compiled) alike. */
export const MIGRATIONS_DIR = path.resolve(__dirname, '..', '..', 'migrations');
