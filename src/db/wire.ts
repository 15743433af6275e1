/**
 * Just enough of the PostgreSQL wire protocol for the socket layer to see what a connection is
 * doing: what kind of session the first bytes open, and, on the server's side, ReadyForQuery
 * and FATAL errors. Everything else is skipped by length, without copying.
 */

export type FirstMessage = 'startup' | 'ssl-request' | 'cancel' | 'unknown';

const PROTOCOL_3 = 196608;
const SSL_REQUEST = 80877103;
const CANCEL_REQUEST = 80877102;
const READY_FOR_QUERY = 0x5a; // 'Z'
const ERROR_RESPONSE = 0x45; // 'E'
// ErrorResponses are short; a longer one is skipped rather than buffered.
const MAX_ERROR_BYTES = 4096;
const EMPTY = Buffer.alloc(0);

/** The first message a client sends carries its kind in the int32 after the length. */
export function firstMessage(data: unknown): FirstMessage {
  if (!Buffer.isBuffer(data) || data.length < 8) return 'unknown';
  const code = data.readInt32BE(4);
  if (code === PROTOCOL_3) return 'startup';
  if (code === SSL_REQUEST) return 'ssl-request';
  if (code === CANCEL_REQUEST) return 'cancel';
  return 'unknown'; // GSS encryption, direct TLS, or bytes we do not know
}

export interface ServerEvents {
  /** ReadyForQuery: the status byte is 'I' (idle), 'T' (in a transaction) or 'E' (failed one). */
  ready(status: number): void;
  /** A FATAL or PANIC ErrorResponse: the server is ending this session. */
  fatal(code: string, message: string): void;
  /** Any other ErrorResponse (a query's): its SQLSTATE. */
  error?(code: string): void;
}

/** Reads the server's message stream chunk by chunk; messages may straddle chunks. */
export function createMessageReader(on: ServerEvents): (chunk: Buffer, from?: number) => void {
  let header = EMPTY; // a 5-byte header (type + int32 length) split across chunks
  let type = 0;
  let left = 0; // body bytes still to read of the current message
  let body: Buffer[] | null = null; // collected body of an ErrorResponse

  function end(): void {
    left = 0;
    if (!body) return;
    const fields = errorFields(Buffer.concat(body));
    body = null;
    // Only a FATAL error ends the session; an ERROR belongs to a query and its caller sees it.
    const severity = fields.V ?? fields.S;
    if (severity === 'FATAL' || severity === 'PANIC') {
      on.fatal(fields.C ?? 'unknown', (fields.M ?? '').slice(0, 300));
    } else on.error?.(fields.C ?? 'unknown');
  }

  return (chunk, from = 0) => {
    let i = from;
    while (i < chunk.length) {
      if (left > 0) {
        const n = Math.min(left, chunk.length - i);
        if (type === READY_FOR_QUERY) on.ready(chunk[i]!);
        else if (body) body.push(chunk.subarray(i, i + n));
        left -= n;
        i += n;
        if (left === 0) end();
        continue;
      }
      if (header.length === 0 && chunk.length - i >= 5) {
        type = chunk[i]!;
        left = chunk.readInt32BE(i + 1) - 4;
        i += 5;
      } else {
        const need = 5 - header.length;
        header = Buffer.concat([header, chunk.subarray(i, i + need)]);
        i += Math.min(need, chunk.length - i);
        if (header.length < 5) return;
        type = header[0]!;
        left = header.readInt32BE(1) - 4;
        header = EMPTY;
      }
      if (type === ERROR_RESPONSE && left <= MAX_ERROR_BYTES) body = [];
      if (left <= 0) end();
    }
  };
}

/** ErrorResponse fields: a type byte and a NUL-terminated string each, then a final NUL. */
function errorFields(body: Buffer): Record<string, string> {
  const fields: Record<string, string> = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const end = body.indexOf(0, i + 1);
    if (end < 0) break;
    fields[String.fromCharCode(body[i]!)] = body.toString('utf8', i + 1, end);
    i = end + 1;
  }
  return fields;
}
