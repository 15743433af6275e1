import fs from 'node:fs';
import path from 'node:path';

/** The nearest directory above `from` that holds a package.json. */
function repoRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

/** The repository, whether this runs from test/support (jest) or compiled into build/ (bench). */
export const ROOT = repoRoot(__dirname);
