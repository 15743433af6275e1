/** Reads a JSON request body with a size limit; the answers map onto the contract's 400/413/415. */
import getRawBody from 'raw-body';
import { AppError, ValidationError } from '../errors';
import type { KeelContext } from './context';

export async function readJson(ctx: KeelContext, limitBytes: number): Promise<unknown> {
  const length = ctx.request.length;
  const hasBody =
    ctx.request.type !== '' ||
    (length !== undefined && length > 0) ||
    ctx.get('Transfer-Encoding') !== '';
  if (ctx.request.type !== '' && !ctx.is('json', '+json')) {
    throw new AppError(
      415,
      'unsupported_media_type',
      'the request body must be JSON (Content-Type: application/json)',
    );
  }
  if (!hasBody) throw new ValidationError('a JSON request body is required');
  if (ctx.request.type === '') {
    throw new AppError(
      415,
      'unsupported_media_type',
      'the request body must be JSON (Content-Type: application/json)',
    );
  }
  const charset = ctx.request.charset || 'utf-8';
  if (!/^utf-?8$/i.test(charset)) {
    throw new AppError(
      415,
      'unsupported_media_type',
      `charset ${charset} is not supported; use utf-8`,
    );
  }
  let text: string;
  try {
    text = await getRawBody(ctx.req, { length, limit: limitBytes, encoding: 'utf-8' });
  } catch (err) {
    const e = err as { type?: string; status?: number };
    if (e.type === 'entity.too.large') {
      throw new AppError(
        413,
        'payload_too_large',
        `the request body is larger than ${limitBytes} bytes`,
      );
    }
    if (e.type === 'request.aborted')
      throw new AppError(499, 'client_closed_request', 'the client went away');
    throw new ValidationError('the request body could not be read');
  }
  if (text.trim() === '') throw new ValidationError('a JSON request body is required');
  try {
    return JSON.parse(text);
  } catch {
    throw new ValidationError('the request body is not valid JSON');
  }
}
