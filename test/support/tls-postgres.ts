/** A test Postgres with TLS on (a throwaway self-signed certificate), when openssl is installed. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestPostgres, type TestPostgres } from './postgres';

export function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Starts the server with `ssl = on`; `destroy()` also removes the certificate. */
export async function startTlsPostgres(): Promise<TestPostgres> {
  const certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-tls-'));
  const cert = path.join(certDir, 'server.crt');
  const key = path.join(certDir, 'server.key');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  fs.chmodSync(key, 0o600);
  // The server runs as "postgres" when the tests run as root: it must own its key.
  if (process.getuid?.() === 0) {
    const line = fs
      .readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('postgres:'));
    const [, , uid, gid] = line!.split(':');
    fs.chmodSync(certDir, 0o755);
    for (const f of [cert, key]) fs.chownSync(f, Number(uid), Number(gid));
  }
  const pg = await startTestPostgres({
    localOnly: true,
    settings: { ssl: 'on', ssl_cert_file: `'${cert}'`, ssl_key_file: `'${key}'` },
  });
  return {
    ...pg,
    async destroy() {
      await pg.destroy();
      fs.rmSync(certDir, { recursive: true, force: true });
    },
  };
}
