/** Reading the process table from /proc (Linux). */
import fs from 'node:fs';

/** Every live pid with its parent's pid, from one scan of /proc. */
export function processTable(): Array<{ pid: number; ppid: number }> {
  const out: Array<{ pid: number; ppid: number }> = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The fields after the command name (which may hold spaces): state, then ppid.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      out.push({ pid: Number(entry), ppid });
    } catch {
      // Gone between readdir and read.
    }
  }
  return out;
}

/** The pid exists (signal 0 reaches it; a zombie counts: see lifecycle.alive for that). */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
