/**
 * A real PgBouncer (Debian package) in transaction mode in front of a test Postgres.
 * PgBouncer refuses to run as root, so as root it runs as the `postgres` user.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, SUPERPASS, SUPERUSER } from './postgres';

export interface PgBouncer {
  port: number;
  url(database: string): string;
  /** The admin console (database `pgbouncer`; the superuser is an admin user). */
  adminUrl(): string;
  stop(): Promise<void>;
}

export function findPgBouncer(): string | null {
  for (const p of ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer']) {
    if (fs.existsSync(p)) return p;
  }
  return null;
}

function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('running as root needs a "postgres" system user for pgbouncer');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`pgbouncer did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startPgBouncer(opts: {
  targetPort: number;
  poolSize?: number;
}): Promise<PgBouncer> {
  const bin = findPgBouncer();
  if (!bin) throw new Error('pgbouncer is not installed (apt-get install pgbouncer; .ci/run does)');
  const user = runAs();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-pgb-'));
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'users.txt'), `"${SUPERUSER}" "${SUPERPASS}"\n`);
  fs.writeFileSync(
    path.join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=127.0.0.1 port=${opts.targetPort}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      `unix_socket_dir = ${dir}`,
      'auth_type = plain',
      `admin_users = ${SUPERUSER}`,
      `auth_file = ${path.join(dir, 'users.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${opts.poolSize ?? 20}`,
      'max_client_conn = 500',
      // Reconnect to the server quickly after a restart (the default is 15 s).
      'server_login_retry = 1',
      'ignore_startup_parameters = extra_float_digits',
      `logfile = ${path.join(dir, 'pgbouncer.log')}`,
      `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  if (user) {
    for (const f of ['', 'users.txt', 'pgbouncer.ini'])
      fs.chownSync(path.join(dir, f), user.uid, user.gid);
  }
  const child: ChildProcess = spawn(bin, [path.join(dir, 'pgbouncer.ini')], {
    ...(user ?? {}),
    stdio: 'ignore',
  });
  let exited = false;
  child.once('exit', () => (exited = true));
  await waitForPort(port, 10000);
  return {
    port,
    url: (database) => `postgres://${SUPERUSER}:${SUPERPASS}@127.0.0.1:${port}/${database}`,
    adminUrl: () => `postgres://${SUPERUSER}:${SUPERPASS}@127.0.0.1:${port}/pgbouncer`,
    async stop() {
      if (!exited) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM'); // immediate shutdown (SIGINT waits for clients)
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([gone, new Promise((r) => (timer = setTimeout(r, 5000)))]);
        clearTimeout(timer);
        if (!exited) child.kill('SIGKILL');
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
