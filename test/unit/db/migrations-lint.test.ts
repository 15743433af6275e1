/**
 * The migration linter: squawk (configured in .squawk.toml, run by `npm run lint`) passes the
 * project's migrations and refuses an unsafe one with its rule's name, and every file keeps
 * Keel's own rule (a `-- keel:no-transaction` file holds exactly one statement).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MIGRATIONS_DIR } from '../../../src/db/migrate';
import { parseMigration } from '../../../src/db/migration-file';
import { ROOT } from '../../support/paths';

// squawk's linux-x64 build, the binary itself (the `squawk-cli` wrapper package cannot be locked
// here: this registry has no builds for its other platforms, and `npm ci` then refuses the lock).
const SQUAWK = path.join(ROOT, 'node_modules', '@squawk-cli', 'linux-x64', 'bin', 'squawk');

function squawk(files: string[]): { code: number | null; out: string } {
  const r = spawnSync(SQUAWK, ['--reporter', 'gcc', ...files], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

const files = fs.readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql'));

test("the project's migrations pass squawk (0001 and 0002 grandfathered in .squawk.toml)", () => {
  const r = squawk(files.map((f) => path.join('migrations', f)));
  expect(r.out).not.toContain('warning');
  expect(r.code).toBe(0);
});

test("every migration keeps Keel's rule for files outside a transaction", () => {
  for (const f of files) {
    expect(() =>
      parseMigration(f, fs.readFileSync(path.join(MIGRATIONS_DIR, f), 'utf8')),
    ).not.toThrow();
  }
});

test('an unsafe migration is refused with the rule that names the danger', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-squawk-'));
  try {
    const bad = path.join(dir, '0006_bad.sql');
    fs.writeFileSync(
      bad,
      'alter table accounts add column note_id bigint not null;\n' +
        'create index accounts_note_idx on accounts (note_id);\n',
    );
    const r = squawk([bad]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('adding-required-field');
    expect(r.out).toContain('require-concurrent-index-creation');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
