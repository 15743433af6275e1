/**
 * A worker whose postgres.js is not patched (`npm ci --ignore-scripts`) refuses to start: exit
 * 78 with one line saying what to run. The checkout is copied to a temp directory whose
 * node_modules is the real one but for an unpatched copy of the driver (the patch reversed).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureBuilt, ROOT } from '../support/pm2';
import { needs } from '../support/prereqs';

const test = needs('patch'); // skipped, with one line, where patch is missing

let tmp: string;

beforeAll(() => {
  ensureBuilt();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-unpatched-'));
  fs.cpSync(path.join(ROOT, 'dist'), path.join(tmp, 'dist'), { recursive: true });
  fs.cpSync(path.join(ROOT, 'patches'), path.join(tmp, 'patches'), { recursive: true });
  const modules = path.join(ROOT, 'node_modules');
  fs.mkdirSync(path.join(tmp, 'node_modules'));
  for (const name of fs.readdirSync(modules)) {
    if (name === 'postgres') continue;
    fs.symlinkSync(path.join(modules, name), path.join(tmp, 'node_modules', name));
  }
  fs.cpSync(
    fs.realpathSync(path.join(modules, 'postgres')),
    path.join(tmp, 'node_modules', 'postgres'),
    {
      recursive: true,
    },
  );
  // Undo the patch on the copy: exactly what an install without patch-package leaves.
  execFileSync(
    'patch',
    ['-R', '-p1', '-s', '-i', path.join(tmp, 'patches', 'postgres+3.4.9.patch')],
    {
      cwd: tmp,
    },
  );
});

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function start(dir: string) {
  return spawnSync(process.execPath, [path.join(dir, 'dist', 'main.js')], {
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: 'postgres://keel:pw@127.0.0.1:1/keel',
      PORT: '0',
      HOST: '127.0.0.1',
    },
    encoding: 'utf8',
    timeout: 20000,
  });
}

test('an unpatched driver: exit 78 with one line that says to run npm ci', () => {
  const r = start(tmp);
  expect(r.status).toBe(78);
  const lines = r.stderr.split('\n').filter(Boolean);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(
    /^keel: the postgres\.js patch .* is not applied to cjs\/src\/connection\.js/,
  );
  expect(lines[0]).toMatch(/run `npm ci` without --ignore-scripts/);
});
