/**
 * The Keel that a run measures, frozen when the run starts: dist/, migrations/, patches/, package.json and
 * the real ecosystem.config.js copied to a temp dir (node_modules linked). The working tree is
 * shared and rebuilt while a run takes minutes; without this, pair 1 and pair 2 could measure
 * different code. The fingerprint (a hash of the copied files) goes into the results.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './fixtures';
import type { Cleanup } from './types';

// patches/: a worker checks at start that the driver patch it names is applied; a worker reads
// docs/openapi.json at start (GET /openapi.json).
const COPIED = [
  'dist',
  'migrations',
  'patches',
  'package.json',
  'ecosystem.config.js',
  'docs/openapi.json',
];

function hashTree(dir: string, hash: crypto.Hash): void {
  for (const entry of fs
    .readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) hashTree(full, hash);
    else if (!entry.name.endsWith('.map')) hash.update(entry.name).update(fs.readFileSync(full));
  }
}

export interface Snapshot {
  root: string;
  fingerprint: string;
}

/** `from`: the checkout to copy (another one's dist/ is measured against this one's, A/B). */
function createSnapshot({ cleanup, from = ROOT }: { cleanup: Cleanup; from?: string }): Snapshot {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-bench-app-'));
  cleanup.add('remove keel snapshot', () => fs.rmSync(root, { recursive: true, force: true }));
  for (const name of COPIED) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    fs.cpSync(path.join(from, name), path.join(root, name), { recursive: true });
  }
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'), 'dir');
  const hash = crypto.createHash('sha256');
  hashTree(path.join(root, 'dist'), hash);
  hash.update(fs.readFileSync(path.join(root, 'ecosystem.config.js')));
  return { root, fingerprint: hash.digest('hex').slice(0, 12) };
}

export { createSnapshot };
