/**
 * Reads a JSON request body with a size limit; the answers map onto the contract's 400/413/415.
 * Bytes that are not UTF-8 and text Postgres cannot store are refused here, before any route
 * sees the body, so nothing is ever stored changed.
 */
import getRawBody from 'raw-body';
import { AppError, ClientGoneError, ValidationError } from '../errors';
import type { KeelContext } from './context';
import { findUnstorableText } from './json-text';
import { timedOutByServer } from './server-limits';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

function notJson(message?: string) {
  return new AppError('unsupported_media_type', message);
}

export async function readJson(ctx: KeelContext, limitBytes: number): Promise<unknown> {
  const length = ctx.request.length;
  const chunked = ctx.get('Transfer-Encoding') !== '';
  // No body at all (no length, or length 0, and not chunked) is a missing body whatever the
  // Content-Type says (`curl -X POST -d ''` sends a form type): 400, not 415.
  if (!chunked && (length === undefined || length === 0)) {
    throw new ValidationError('a JSON request body is required', [
      { path: 'body', message: 'is required' },
    ]);
  }
  if (ctx.request.type === '' || !ctx.is('json', '+json')) throw notJson();
  const charset = ctx.request.charset || 'utf-8';
  if (!/^utf-?8$/i.test(charset)) throw notJson(`charset ${charset} is not supported; use utf-8`);
  let raw: Buffer;
  try {
    raw = await ctx.state.receive(() => getRawBody(ctx.req, { length, limit: limitBytes }));
  } catch (err) {
    const e = err as { type?: string };
    // A declared length over the limit is refused before any of the body is read, at once;
    // ./middleware/unread-body closes the connection if the rest is still on its way.
    if (e.type === 'entity.too.large') {
      throw new AppError(
        'payload_too_large',
        `the request body is larger than ${limitBytes} bytes`,
      );
    }
    if (e.type === 'request.aborted') {
      // Cut off by the receive timeout, which answered 408 on the socket: logged as such.
      if (timedOutByServer(ctx.req.socket)) throw new AppError('request_timeout');
      throw new ClientGoneError();
    }
    throw new ValidationError('the request body could not be read');
  }
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    throw new ValidationError('the request body is not valid UTF-8', [
      { path: 'body', message: 'is not valid UTF-8' },
    ]);
  }
  if (text.trim() === '') {
    throw new ValidationError('a JSON request body is required', [
      { path: 'body', message: 'is required' },
    ]);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ValidationError('the request body is not valid JSON');
  }
  const bad = findUnstorableText(parsed);
  if (bad) throw new ValidationError(`body: ${bad.path} ${bad.message}`, [bad]);
  return parsed;
}
