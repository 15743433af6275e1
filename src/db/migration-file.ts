/** A migration file as the runner applies it: in one transaction, or as its one statement. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  concurrentIndexName,
  isNoTransaction,
  NO_TRANSACTION_MARKER,
  splitStatements,
} from './sql-text';

/**
 * A contract step (docs/migrations.md, expand / contract) names the expand file whose release it
 * completes: `-- keel:contract 0006_account_display_name.sql` on a line of its own. Workers never
 * apply it at boot; the migrate command applies it only while no worker of a release without
 * that file is online.
 */
const CONTRACT_MARKER = '-- keel:contract';

type Contract = { /** The expand file every online worker must know. */ contract?: string };
export type MigrationFile = Contract &
  (
    | { name: string; transaction: true; text: string }
    | { name: string; transaction: false; statement: string; index: string | null }
  );

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
  const contract = contractOf(name, text);
  const extra = contract ? { contract } : {};
  if (!isNoTransaction(text)) return { name, transaction: true, text, ...extra };
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
  return { name, transaction: false, statement, index: concurrentIndexName(statement), ...extra };
}

/** The expand file a `-- keel:contract <file>` line names, or undefined (not a contract step). */
function contractOf(name: string, text: string): string | undefined {
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line !== CONTRACT_MARKER && !line.startsWith(`${CONTRACT_MARKER} `)) continue;
    const expand = line.slice(CONTRACT_MARKER.length).trim();
    if (!/^[^\s/]+\.sql$/.test(expand) || expand >= name) {
      throw new MigrationFileError(
        name,
        `"${CONTRACT_MARKER}" names the expand file it completes, an earlier .sql file of this folder: "${CONTRACT_MARKER} 0006_add_x.sql"`,
      );
    }
    return expand;
  }
  return undefined;
}
