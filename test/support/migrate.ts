/**
 * The migrate command as a deploy runs it (a child process of dist/cli/migrate.js), a folder of
 * migrations made for one test, and a session that holds a lock for a while.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { MIGRATIONS_DIR } from '../../src/db/migrate';
import { ROOT } from './paths';
import { psql } from './postgres';
import { sleep, until } from './wait';

export interface MigrateRun {
  code: number | null;
  logs: Array<Record<string, unknown>>;
  stderr: string;
}

/** Runs `node dist/cli/migrate.js` with `env` (on top of a minimal one) until it exits. */
export function runMigrate(env: Record<string, string>): Promise<MigrateRun> {
  const cli = path.join(ROOT, 'dist', 'cli', 'migrate.js');
  if (!fs.existsSync(cli)) throw new Error('dist/ is missing: run `npm run build` first');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli], {
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'debug', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const logs = out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, logs, stderr });
    });
  });
}

/** A folder with the project's migrations plus `extra` (file name → SQL); removed by `rm()`. */
export function migrationsDir(extra: Record<string, string>): { dir: string; rm(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-migrations-'));
  for (const f of fs.readdirSync(MIGRATIONS_DIR)) {
    fs.copyFileSync(path.join(MIGRATIONS_DIR, f), path.join(dir, f));
  }
  for (const [name, sql] of Object.entries(extra)) fs.writeFileSync(path.join(dir, name), sql);
  return { dir, rm: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export interface LockHolder {
  pid: number;
  /** Commits the holder's transaction (its locks go with it) and closes its connection. */
  release(): Promise<void>;
}

/**
 * A session named `application` that runs `statements` in an open transaction and keeps it
 * open (its locks held) until `release()` or `holdMs`, whichever comes first.
 */
export async function holdLock(
  url: string,
  statements: string[],
  { application = 'test:holder', holdMs }: { application?: string; holdMs: number },
): Promise<LockHolder> {
  const sql = postgres(url, {
    max: 1,
    onnotice: () => undefined,
    connection: { application_name: application },
  });
  let end!: () => void;
  const ended = new Promise<void>((r) => (end = r));
  let pid = 0;
  let started!: () => void;
  const ready = new Promise<void>((r) => (started = r));
  const tx = sql
    .begin(async (t) => {
      const [row] = await t<[{ pid: number }]>`select pg_backend_pid() as pid`;
      pid = row.pid;
      for (const s of statements) await t.unsafe(s);
      started();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([ended, new Promise((r) => (timer = setTimeout(r, holdMs)))]);
      clearTimeout(timer);
    })
    .catch((err: unknown) => {
      started();
      throw err;
    });
  await ready;
  let released: Promise<void> | null = null;
  return {
    pid,
    release() {
      released ??= (async () => {
        end();
        await tx;
        await sql.end({ timeout: 5 });
      })();
      return released;
    },
  };
}

/**
 * Runs the migrate command while `holder` keeps its locks, releasing them `holdMs` after the
 * command has connected (its start-up on a loaded machine is not part of the hold). Resolves
 * with the run and when the command connected.
 */
export async function migrateWhileHeld(
  url: string,
  holder: LockHolder,
  env: Record<string, string>,
  holdMs: number,
): Promise<{ run: MigrateRun; connected: number }> {
  const migrated = runMigrate(env);
  try {
    await until(
      'the migrate command connects',
      async () => {
        const rows = await psql(
          url,
          `select 1 from pg_stat_activity where application_name = 'keel:migrate'`,
        );
        return rows.length > 0;
      },
      30_000,
    );
  } finally {
    await sleep(holdMs);
    await holder.release();
  }
  const connected = Date.now() - holdMs;
  return { run: await migrated, connected };
}
