/**
 * A second release of Keel, for tests that run two releases side by side (expand / contract): a
 * copy of the checkout's dist/ with the code change that release makes, given as exact edits of
 * compiled files, each found exactly `count` times (a dist/ that no longer matches fails here,
 * loudly). Beside the copy, links to the checkout's node_modules, docs, patches and migrations,
 * so its paths resolve as the checkout's do. PM2 starts it through ./pm2-worker.js with
 * KEEL_TEST_DIST=<dist>.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './paths';

export interface Edit {
  /** A file under dist/, e.g. `ledger/accounts.js`. */
  file: string;
  from: string;
  to: string;
  count: number;
}

export function buildRelease(edits: Edit[]): { dist: string; rm(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-release-'));
  const dist = path.join(dir, 'dist');
  fs.cpSync(path.join(ROOT, 'dist'), dist, { recursive: true });
  for (const link of ['node_modules', 'docs', 'patches', 'migrations', 'package.json']) {
    fs.symlinkSync(path.join(ROOT, link), path.join(dir, link));
  }
  for (const e of edits) {
    const file = path.join(dist, e.file);
    const text = fs.readFileSync(file, 'utf8');
    const found = text.split(e.from).length - 1;
    if (found !== e.count) {
      throw new Error(
        `release edit: ${e.count} x ${JSON.stringify(e.from)} expected in dist/${e.file}, found ${found}`,
      );
    }
    fs.writeFileSync(file, text.split(e.from).join(e.to));
  }
  return { dist, rm: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
