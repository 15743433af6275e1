/** Imports run one way: the commands in src/cli use the workers' modules, never the reverse. */
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../../support/paths';

function files(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)]))
    .filter((f) => f.endsWith('.ts'));
}

test('nothing outside src/cli imports from src/cli', () => {
  const src = path.join(ROOT, 'src');
  const cli = path.join(src, 'cli');
  const offenders = files(src)
    .filter((f) => !f.startsWith(cli + path.sep))
    .flatMap((f) =>
      [...fs.readFileSync(f, 'utf8').matchAll(/\bfrom\s+'(\.[^']+)'|require\('(\.[^']+)'\)/g)]
        .map((m) => path.resolve(path.dirname(f), m[1] ?? m[2]!))
        .filter((target) => target === cli || target.startsWith(cli + path.sep))
        .map((target) => `${path.relative(ROOT, f)} -> ${path.relative(ROOT, target)}`),
    );
  expect(offenders).toEqual([]);
});
