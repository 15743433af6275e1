/**
 * Tests that need a tool from outside npm (scripts/test-prereqs.sh, which `npm test` runs first,
 * installs them as root on Debian): `needs(tool)` is `test` when the tool is here, otherwise
 * `test.skip`, with one line per file saying which tool is missing and how to get it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './paths';

const PACKAGE = {
  pgbouncer: 'pgbouncer',
  promtool: 'prometheus',
  'systemd-analyze': 'systemd',
  patch: 'patch',
} as const;
type Tool = keyof typeof PACKAGE;

function have(tool: Tool): boolean {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/bin'];
  return dirs.some((d) => {
    try {
      fs.accessSync(path.join(d, tool), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const said = new Set<Tool>();

export function needs(tool: Tool): jest.It {
  if (have(tool)) return test;
  if (!said.has(tool)) {
    said.add(tool);
    const file = path.relative(ROOT, expect.getState().testPath ?? '');
    process.stderr.write(
      `keel test prerequisites: ${tool} is missing: its tests in ${file} skip; to run them: ` +
        `apt-get install ${PACKAGE[tool]} (npm test as root on Debian installs it)\n`,
    );
  }
  return test.skip;
}
