/** How the runner reads a migration file: the no-transaction marker, its statements, its index. */
import { MigrationFileError, parseMigration } from '../../../src/db/migration-file';
import { splitStatements } from '../../../src/db/sql-text';

test('a file without the marker runs whole, in one transaction', () => {
  const text = 'alter table a add column b int;\ncreate index concurrently x on a (b);\n';
  expect(parseMigration('0006.sql', text)).toEqual({ name: '0006.sql', transaction: true, text });
});

test('the marker must come before the first statement', () => {
  const text = 'select 1;\n-- keel:no-transaction\n';
  expect(parseMigration('0006.sql', text)).toMatchObject({ transaction: true });
});

test('a marked file is its one statement, with the index a concurrent build makes', () => {
  const text =
    '-- Why: lookups by name.\n-- keel:no-transaction\n' +
    'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "Accounts_name" ON accounts (name);\n';
  expect(parseMigration('0006.sql', text)).toEqual({
    name: '0006.sql',
    transaction: false,
    statement: 'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "Accounts_name" ON accounts (name)',
    index: '"Accounts_name"',
  });
});

test('a marked file with two statements is refused, naming the rule', () => {
  const text = '-- keel:no-transaction\ncreate index concurrently i on a (b);\nselect 1;\n';
  expect(() => parseMigration('0007.sql', text)).toThrow(MigrationFileError);
  expect(() => parseMigration('0007.sql', text)).toThrow(
    '0007.sql: a file marked "-- keel:no-transaction" holds exactly one statement, found 2',
  );
});

test('semicolons inside quotes, dollar quotes and comments do not split a statement', () => {
  const text = `
    select 'a;b', "c;d" from t; -- a comment; with a semicolon
    create function f() returns int language sql as $body$ select 1; $body$;
    /* block; comment */ select 2`;
  expect(splitStatements(text)).toEqual([
    `select 'a;b', "c;d" from t`,
    'create function f() returns int language sql as $body$ select 1; $body$',
    'select 2',
  ]);
});
