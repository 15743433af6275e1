/**
 * WAL positions (LSNs) and the Consistency-Token that carries one (contract v1.2, "Consistency
 * across replicas"). A token is opaque to clients: base64url of `keel1:<16 hex digits>`, or of
 * `keel1:p` ("the primary's state": served by the primary only), which is what a write answers
 * when no standby is configured or its position could not be learned.
 */

/** A position to reach (an LSN), or `primary`: only the primary is known to hold it. */
export type Position = bigint | 'primary';

/** A request's consistency: what it must reflect (its token), and what its answer reflects. */
export interface Consistency {
  after: Position | null;
  seen: Position | null;
}

/** `16/B374D848` (pg_lsn's text) as a number. */
export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!m) throw new Error(`not an LSN: ${JSON.stringify(text)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

const PAGE = 8192n;
// A short page header is 24 bytes, the long one that opens a segment 40 (xlog_internal.h).
const HEADERS = new Set([24n, 40n]);

/**
 * pg_current_wal_insert_lsn() right after a page header means the last record ended at the page
 * boundary: a standby that replayed it reports the boundary, so the boundary is the position
 * the state needs (no record is shorter than 24 bytes, so these offsets are nothing else).
 */
export function normalizeInsertLsn(lsn: bigint): bigint {
  const offset = lsn % PAGE;
  return HEADERS.has(offset) ? lsn - offset : lsn;
}

const PREFIX = 'keel1:';

export function encodeToken(position: Position): string {
  const body = position === 'primary' ? 'p' : position.toString(16).padStart(16, '0');
  return Buffer.from(PREFIX + body, 'utf8').toString('base64url');
}

/** One token, or null when it is not one this server made. */
function decodeToken(token: string): Position | null {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(token)) return null;
  const text = Buffer.from(token, 'base64url').toString('utf8');
  if (!text.startsWith(PREFIX)) return null;
  const body = text.slice(PREFIX.length);
  if (body === 'p') return 'primary';
  if (!/^[0-9a-f]{16}$/.test(body)) return null;
  return BigInt(`0x${body}`);
}

/**
 * The header's value: one token or several joined by ", " (Node joins a repeated header the
 * same way). The position that covers them all, or null when any part is not a token.
 */
export function parseTokenHeader(value: string): Position | null {
  let covered: Position = 0n;
  for (const part of value.split(',')) {
    const p = decodeToken(part.trim());
    if (p === null) return null;
    covered = later(covered, p);
  }
  return covered;
}

/** The position that covers both. */
export function later(a: Position, b: Position): Position {
  if (a === 'primary' || b === 'primary') return 'primary';
  return a > b ? a : b;
}
