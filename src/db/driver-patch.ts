/**
 * Keel needs its postgres.js patch (docs/driver-patch.md): without it a backend dying under a
 * transaction can end the process. `npm ci --ignore-scripts` (or a copied node_modules) skips
 * patch-package, so a worker checks at start that every line the patch adds is in the
 * installed driver, and refuses to start otherwise.
 */
import fs from 'node:fs';
import path from 'node:path';

/** The postgres.js version the patch is for (package.json pins it exactly). */
export const DRIVER_VERSION = '3.4.9';
export const DRIVER_PATCH_NAME = `postgres+${DRIVER_VERSION}.patch`;
const DRIVER_PATCH = path.resolve(__dirname, '..', '..', 'patches', DRIVER_PATCH_NAME);

/** The non-blank lines a patch adds, per file (relative to node_modules/postgres). */
export function patchAdditions(patch: string): Map<string, string[]> {
  const added = new Map<string, string[]>();
  let file: string | null = null;
  for (const line of patch.split('\n')) {
    const target = /^\+\+\+ b\/node_modules\/postgres\/(.+)$/.exec(line);
    if (target) {
      file = target[1]!;
      added.set(file, []);
    } else if (file && line.startsWith('+') && line.slice(1).trim() !== '') {
      added.get(file)!.push(line.slice(1).trim());
    }
  }
  return added;
}

/** The files the patch changes that lack one of its added lines (empty: applied). */
export function unpatchedDriverFiles(
  patchFile = DRIVER_PATCH,
  driverEntry = require.resolve('postgres'),
): string[] {
  // .../node_modules/postgres/cjs/src/index.js → .../node_modules/postgres
  const root = driverEntry.slice(0, driverEntry.lastIndexOf(`${path.sep}cjs${path.sep}`));
  let patch: string;
  try {
    patch = fs.readFileSync(patchFile, 'utf8');
  } catch {
    return [patchFile];
  }
  const missing: string[] = [];
  for (const [rel, lines] of patchAdditions(patch)) {
    let text = '';
    try {
      text = fs.readFileSync(path.join(root, rel), 'utf8');
    } catch {
      // unreadable counts as unpatched
    }
    if (!lines.every((l) => text.includes(l))) missing.push(rel);
  }
  return missing;
}
