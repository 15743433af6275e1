/** A migration file as the runner applies it: in one transaction, or as its one statement. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  concurrentIndexName,
  isNoTransaction,
  NO_TRANSACTION_MARKER,
  splitStatements,
} from './sql-text';

export type MigrationFile =
  | { name: string; transaction: true; text: string }
  | { name: string; transaction: false; statement: string; index: string | null };

/** A file the runner refuses before applying anything (the deploy log names the rule). */
export class MigrationFileError extends Error {
  readonly code = 'KEEL_MIGRATION_FILE';
  constructor(
    readonly migration: string,
    problem: string,
  ) {
    super(`${migration}: ${problem}`);
    this.name = 'MigrationFileError';
  }
}

export async function readMigration(dir: string, name: string): Promise<MigrationFile> {
  const text = await readFile(path.join(dir, name), 'utf8');
  return parseMigration(name, text);
}

export function parseMigration(name: string, text: string): MigrationFile {
  if (!isNoTransaction(text)) return { name, transaction: true, text };
  const statements = splitStatements(text);
  // Outside a transaction a failure after the first statement would leave half a file applied,
  // with no record of which half: one statement per file, so a retry repeats exactly that one.
  if (statements.length !== 1) {
    throw new MigrationFileError(
      name,
      `a file marked "${NO_TRANSACTION_MARKER}" holds exactly one statement, found ${statements.length}: put each in its own file`,
    );
  }
  const statement = statements[0]!;
  return { name, transaction: false, statement, index: concurrentIndexName(statement) };
}
