/**
 * What the migration runner reads from a file's text: whether it is marked to run outside a
 * transaction, its statements, and the index a `CREATE INDEX CONCURRENTLY` builds.
 */

/** The marker, on a line of its own before the first statement. */
export const NO_TRANSACTION_MARKER = '-- keel:no-transaction';

export function isNoTransaction(text: string): boolean {
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === NO_TRANSACTION_MARKER) return true;
    if (line !== '' && !line.startsWith('--')) return false;
  }
  return false;
}

/**
 * The file's statements, without comments, split at top-level semicolons (quotes, quoted
 * identifiers, dollar quotes and comments are skipped, so a function body stays whole).
 */
export function splitStatements(text: string): string[] {
  const out: string[] = [];
  let current = '';
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === '-' && next === '-') {
      const end = text.indexOf('\n', i);
      i = end === -1 ? n : end;
      continue;
    }
    if (c === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end === -1 ? n : end + 2;
      current += ' ';
      continue;
    }
    if (c === "'" || c === '"') {
      const end = closingQuote(text, i, c);
      current += text.slice(i, end);
      i = end;
      continue;
    }
    if (c === '$') {
      const tag = /^\$[A-Za-z_]*\$/.exec(text.slice(i))?.[0];
      if (tag) {
        const end = text.indexOf(tag, i + tag.length);
        const stop = end === -1 ? n : end + tag.length;
        current += text.slice(i, stop);
        i = stop;
        continue;
      }
    }
    if (c === ';') {
      if (current.trim()) out.push(current.trim());
      current = '';
      i += 1;
      continue;
    }
    current += c;
    i += 1;
  }
  if (current.trim()) out.push(current.trim());
  return out;
}

/** The index after the quote that closes the one at `start` (a doubled quote escapes it). */
function closingQuote(text: string, start: number, quote: string): number {
  let i = start + 1;
  while (i < text.length) {
    if (text[i] === quote) {
      if (text[i + 1] === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i += 1;
  }
  return text.length;
}

const CONCURRENT_INDEX =
  /^create\s+(?:unique\s+)?index\s+concurrently\s+(?:if\s+not\s+exists\s+)?((?:"[^"]+"|[\w$]+)(?:\.(?:"[^"]+"|[\w$]+))?)\s+on\s/i;

/** The (possibly schema-qualified) name of the index a `CREATE INDEX CONCURRENTLY` builds. */
export function concurrentIndexName(statement: string): string | null {
  return CONCURRENT_INDEX.exec(statement.trim())?.[1] ?? null;
}
