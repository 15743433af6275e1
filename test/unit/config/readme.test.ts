/**
 * One source for each configuration fact: the README's configuration table is checked against
 * the variables' specs (src/config/parse.ts) and the numbers config.ts derives, and its
 * shutdown numbers against src/config/shutdown-budget.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { budgetCheckDefault, deriveTimers } from '../../../src/config/config';
import { variableDefaults } from '../../../src/config/parse';
import { killTimeoutMs, worstShutdownMs } from '../../../src/config/shutdown-budget';
import { ROOT } from '../../support/paths';

const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** The rows of the table under `## Configuration`: variable names and the default cell. */
function configurationRows(): Array<{ names: string[]; dflt: string }> {
  const section = readme.slice(readme.indexOf('\n## Configuration\n'));
  const lines = section.split('\n');
  const start = lines.findIndex((l) => l.startsWith('| variable | default |'));
  const rows: Array<{ names: string[]; dflt: string }> = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const [names, dflt] = line.split(' | ');
    rows.push({
      names: [...names!.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!),
      dflt: dflt!,
    });
  }
  return rows;
}

const rows = configurationRows();
const documented = new Map(rows.flatMap((r) => r.names.map((n) => [n, r.dflt] as const)));
const specs = variableDefaults();
/** The literal values of a default cell, in order. */
const literals = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

test('the table has a row for every variable', () => {
  expect(rows.length).toBeGreaterThan(30);
  expect([...specs.keys()].filter((n) => !documented.has(n))).toEqual([]);
});

test('no row names a variable Keel does not read', () => {
  expect([...documented.keys()].filter((n) => !specs.has(n))).toEqual([]);
});

test("a variable with a default shows it first in its row's default cell", () => {
  const wrong = [...specs]
    .filter(([, d]) => d !== undefined)
    .filter(([name, d]) => literals(documented.get(name) ?? '')[0] !== d)
    .map(([name, d]) => `${name}: README says ${documented.get(name)}, the spec ${d}`);
  expect(wrong).toEqual([]);
});

test('a variable without a literal default does not show one (a description, or another variable)', () => {
  const wrong = [...specs]
    .filter(([name, d]) => d === undefined && name !== 'KEEL_BUDGET_CHECK')
    .filter(([name]) => {
      const first = /^`([^`]+)`/.exec(documented.get(name)!.trim());
      return first !== null && !specs.has(first[1]!);
    })
    .map(([name]) => `${name}: ${documented.get(name)}`);
  expect(wrong).toEqual([]);
});

test('derived defaults read as config.ts derives them', () => {
  const budget = documented.get('KEEL_BUDGET_CHECK')!;
  expect(literals(budget)).toEqual([budgetCheckDefault(false), budgetCheckDefault(true)]);
  expect(budget).toMatch(/embedded database/);
  // The timers as percentages of a 100 s cutoff, and a cutoff of an hour or more in minutes.
  const { idle, life } = deriveTimers(100, undefined, undefined);
  const long = deriveTimers(7200, undefined, undefined).life;
  expect(documented.get('DB_IDLE_TIMEOUT_S')).toContain(`${idle![0]}–${idle![1]} % of the cutoff`);
  expect(documented.get('DB_MAX_LIFETIME_S')).toContain(`${life[0]}–${life[1]} % of the cutoff`);
  expect(documented.get('DB_MAX_LIFETIME_S')).toContain(`${long[0] / 60}–${long[1] / 60} min`);
  // Nowhere else in the README either.
  for (const m of readme.matchAll(/(\d+)[-–](\d+) % of (?:the cutoff|`DB_IDLE_CUTOFF_S`)/g))
    expect([`${idle![0]}-${idle![1]}`, `${life[0]}-${life[1]}`]).toContain(`${m[1]}-${m[2]}`);
});

test("the README's shutdown numbers are the computed ones", () => {
  const drain = Number(specs.get('SHUTDOWN_TIMEOUT_MS'));
  const kill = killTimeoutMs(drain);
  const row = readme.split('\n').find((l) => l.startsWith('| PM2 `kill_timeout` |'))!;
  const plus = /`SHUTDOWN_TIMEOUT_MS` \+ ([\d ]+) = ([\d ]+) ms/.exec(row)!;
  expect(Number(plus[1]!.replace(/ /g, ''))).toBe(kill - drain);
  expect(Number(plus[2]!.replace(/ /g, ''))).toBe(kill);
  const worst =
    /The worst shutdown is (\d+) s drain \+ ≤ (\d+) s pool close \+ ≤ (\d+) s log flush = (\d+) s, and (\d+) s of margin makes (\d+) s/.exec(
      row,
    )!;
  const [d, pool, logs, sum, margin, total] = worst.slice(1).map(Number);
  expect(d! + pool! + logs!).toBe(sum);
  expect(sum! * 1000).toBe(worstShutdownMs(drain));
  expect((sum! + margin!) * 1000).toBe(kill);
  expect(total! * 1000).toBe(kill);
  const design = fs.readFileSync(path.join(ROOT, 'docs', 'design', 'shutdown.md'), 'utf8');
  expect(design).toContain(
    `= ${worstShutdownMs(drain) / 1000} s, and \`kill_timeout\` ${kill / 1000} s`,
  );
});
