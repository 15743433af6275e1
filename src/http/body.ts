/**
 * Reads a JSON request body with a size limit; the answers map onto the contract's 400/413/415.
 * Bytes that are not UTF-8 and text Postgres cannot store are refused here, before any route
 * sees the body, so nothing is ever stored changed.
 */
import getRawBody from 'raw-body';
import { AppError, ClientGoneError, ValidationError } from '../errors';
import type { KeelContext } from './context';
import { findUnstorableText } from './json-text';

// After a 413, up to this much more of the body is read and discarded so the connection stays
// usable for the next request; a client sending more than that gets `Connection: close`.
const DRAIN_AFTER_413_BYTES = 1024 * 1024;

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
    raw = await getRawBody(ctx.req, { length, limit: limitBytes });
  } catch (err) {
    const e = err as { type?: string };
    if (e.type === 'entity.too.large') {
      if (!(await drain(ctx, length))) ctx.set('Connection', 'close');
      throw new AppError(
        'payload_too_large',
        `the request body is larger than ${limitBytes} bytes`,
      );
    }
    if (e.type === 'request.aborted') throw new ClientGoneError();
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

/**
 * Reads and discards the rest of an oversized body, at most DRAIN_AFTER_413_BYTES. True when
 * the body ended (the connection can carry the next request); false when there was more, and
 * the answer must close the connection. A body that stops arriving is ended by the server's
 * request timeout (408), so this wait is bounded too.
 */
function drain(ctx: KeelContext, length: number | undefined): Promise<boolean> {
  const req = ctx.req;
  if (req.complete) return Promise.resolve(true);
  // A declared length over the limit is refused before any of it is read.
  if (length !== undefined && length > DRAIN_AFTER_413_BYTES) return Promise.resolve(false);
  return new Promise((resolve) => {
    let seen = 0;
    const done = (ok: boolean) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      if (!ok) req.pause();
      resolve(ok);
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > DRAIN_AFTER_413_BYTES) done(false);
    };
    const onEnd = () => done(true);
    const onClose = () => done(req.complete);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
    req.resume();
  });
}
