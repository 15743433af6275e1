/**
 * Schema migrations: plain SQL files applied by umzug, inside a Postgres advisory lock so that
 * N workers booting at once apply each file exactly once. Each file runs in one transaction
 * together with its bookkeeping row, unless it is marked `-- keel:no-transaction` (one
 * statement, e.g. CREATE INDEX CONCURRENTLY). Every statement runs under a short lock_timeout:
 * a migration never holds the queue of a busy table for longer than that, and a lock timeout
 * (55P03) is retried with backoff within a budget (docs/migrations.md).
 */
import { readdirSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import postgres from 'postgres';
import { Umzug, type UmzugStorage } from 'umzug';
import type { Logger } from '../logger';
import { pendingToApply, type ContractGate } from './contract';
import { advisoryHolders, blockersOf, createLockWatch, type Blocker } from './lock-watch';
import { apply, appliedNames, reportInvalidIndexes } from './migration-apply';
import { readMigration, type MigrationFile } from './migration-file';
import { migrationBackoff } from './retry-decision';

// An arbitrary constant that names "keel migrations" among advisory locks.
const MIGRATION_LOCK_KEY = 7_240_611;
// How often a migrator that found another one at work asks for the advisory lock again.
const ADVISORY_POLL_MS = 250;

export interface MigrateDeps {
  url: string;
  ssl: false | 'require' | 'prefer' | 'verify-full';
  logger: Logger;
  dir: string;
  applicationName?: string;
  /** `lock_timeout` of every statement (default 500 ms). */
  lockTimeoutMs?: number;
  /** `statement_timeout` of every statement (default 10 min; 0 = none). */
  statementTimeoutMs?: number;
  /** How long lock timeouts are retried, per migration and for the advisory lock (default 5 min). */
  budgetMs?: number;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Lets contract steps run (the migrate command); without it they are left pending. */
  contractGate?: ContractGate;
}

/** The budget ran out while a migration (or the advisory lock) waited for locks. */
export class MigrationLockTimeout extends Error {
  readonly code = 'KEEL_MIGRATION_LOCK_BUDGET';
  constructor(
    readonly migration: string,
    readonly waitedMs: number,
    readonly attempts: number,
    readonly blockers: Blocker[],
  ) {
    super(
      `${migration} waited ${(waitedMs / 1000).toFixed(1)} s for locks over ${attempts} attempts ` +
        `and was not applied; blocked by ${blockers.length ? blockers.map((b) => `pid ${b.pid} (${b.application || 'unnamed'})`).join(', ') : 'sessions that ended before they could be named'}`,
    );
    this.name = 'MigrationLockTimeout';
  }
}

/** A statement of a migration failed: the file's name, the server's code and message. */
class MigrationError extends Error {
  readonly code: unknown;
  constructor(
    readonly migration: string,
    cause: unknown,
  ) {
    const e = cause as { code?: unknown; message?: unknown } | null;
    super(`${migration}: ${typeof e?.message === 'string' ? e.message : String(cause)}`, { cause });
    this.code = e?.code;
    this.name = 'MigrationError';
  }
}

const codeOf = (err: unknown) => (err as { code?: unknown } | null)?.code;

export async function migrate(deps: MigrateDeps): Promise<string[]> {
  const lockTimeoutMs = deps.lockTimeoutMs ?? 500;
  const budgetMs = deps.budgetMs ?? 300_000;
  const random = deps.random ?? Math.random;
  const sleep = deps.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  // Two connections: the migration's own, and one that asks who blocks it while it waits.
  const sql = postgres(deps.url, {
    max: 2,
    ssl: deps.ssl,
    connect_timeout: 10,
    onnotice: () => undefined,
    connection: {
      application_name: deps.applicationName ?? 'keel:migrate',
      lock_timeout: lockTimeoutMs,
      statement_timeout: deps.statementTimeoutMs ?? 600_000,
    },
  });
  const log = deps.logger.child({ module: 'migrate' });
  const watch = createLockWatch({ log });

  /** Runs `attempt` until it does not end in a lock timeout, within the budget. */
  async function underBudget<T>(
    name: string,
    attempt: () => Promise<T>,
    find: () => Promise<Blocker[]>,
  ): Promise<T> {
    const start = Date.now();
    watch.reset();
    for (let n = 0; ; n++) {
      try {
        return await watch.during(attempt(), find, { migration: name, attempt: n + 1 });
      } catch (err) {
        if (codeOf(err) !== '55P03') throw err;
        watch.timedOut({ migration: name, attempt: n + 1 });
        const delay = migrationBackoff(n, lockTimeoutMs, random);
        if (Date.now() - start + delay > budgetMs) {
          throw new MigrationLockTimeout(name, Date.now() - start, n + 1, watch.last());
        }
        log.debug('lock timeout, retrying', { migration: name, attempt: n + 1, delayMs: delay });
        await sleep(delay);
      }
    }
  }

  try {
    const conn = await sql.reserve();
    try {
      const [{ pid }] = await conn<[{ pid: number }]>`select pg_backend_pid() as pid`;
      const blockers = () => blockersOf(sql, pid);
      const known = await listFiles(deps.dir);
      // Nothing to do (the deploy's migrate step ran first): no lock, no wait, no connection held.
      const before = await appliedNames(conn);
      if (before && known.every((f) => before.has(f))) {
        const unknown = [...before].filter((n) => !known.includes(n));
        if (unknown.length > 0) {
          log.info('database schema is newer than this release: serving it', { unknown });
        }
        return [];
      }
      const pending = known.filter((f) => !before?.has(f));
      const files = new Map<string, MigrationFile>();
      for (const name of pending) files.set(name, await readMigration(deps.dir, name));
      const step = await pendingToApply(pending, files, known, deps.contractGate, log);
      if (step === 0) return [];
      await underBudget(
        'the migration lock',
        async () => {
          const [row] = await conn<[{ ok: boolean }]>`
            select pg_try_advisory_lock(${MIGRATION_LOCK_KEY}) as ok`;
          if (row.ok) return;
          await new Promise((r) => setTimeout(r, ADVISORY_POLL_MS));
          throw Object.assign(new Error('another migrator holds the migration lock'), {
            code: '55P03',
          });
        },
        () => advisoryHolders(sql, MIGRATION_LOCK_KEY),
      );
      try {
        await underBudget(
          'keel_migrations',
          () =>
            conn`
            create table if not exists keel_migrations (
              name text primary key,
              applied_at timestamptz not null default now()
            )`.then(() => undefined),
          blockers,
        );
        await reportInvalidIndexes(conn, log);
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
            resolve: ({ name }) => ({
              name,
              up: async () => {
                const file = files.get(name) ?? (await readMigration(deps.dir, name));
                try {
                  await underBudget(name, () => apply(conn, file, log), blockers);
                } catch (err) {
                  if (err instanceof MigrationLockTimeout) throw err;
                  throw new MigrationError(name, err);
                }
              },
            }),
          },
          storage,
          logger: undefined,
        });
        // By name: files another migrator applied meanwhile are skipped, and a contract step
        // left pending stays pending.
        const applied = await umzug
          .up({ migrations: pending.slice(0, step), rerun: 'SKIP' })
          .catch((err: unknown) => {
            // umzug wraps what `up` throws; the deploy log wants ours.
            throw (err as { cause?: unknown }).cause ?? err;
          });
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

async function listFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
}

/** The newest file of `dir` (by name, the order files are applied in), or null. */
export function newestMigration(dir: string): string | null {
  return (
    readdirSync(dir)
      .filter((f) => f.endsWith('.sql'))
      .sort()
      .at(-1) ?? null
  );
}

/** The project's migrations folder, from src/db (ts-jest) and dist/db (compiled) alike. */
export const MIGRATIONS_DIR = path.resolve(__dirname, '..', '..', 'migrations');
