/** The root logger: winston, JSON lines on stdout, secrets scrubbed from every line. */
import { Writable } from 'node:stream';
import winston from 'winston';
import type { LogLevel } from './config/config';

export type Logger = winston.Logger;

// postgres://user:secret@host → postgres://user:***@host, in any string anywhere in a line.
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)([^@\s/]+)@/gi;

export function scrub(text: string, secrets: readonly string[] = []): string {
  // The common case (no URL, no secret) costs two substring scans, not a regex replace.
  if (!text.includes('://') && !secrets.some((s) => s.length >= 4 && text.includes(s))) return text;
  let out = text.replace(URL_PASSWORD, '$1***@');
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join('***');
  return out;
}

/**
 * Every form a secret may be printed in: as is, and percent-encoded (as it stands in a URL).
 * Expanded once, not per line.
 */
export function secretForms(secrets: readonly string[]): string[] {
  return [...new Set(secrets.flatMap((s) => [s, encodeURIComponent(s)]))];
}

export interface LoggerOptions {
  level: LogLevel;
  /** Fields on every line (worker, pid). */
  base: Record<string, unknown>;
  /** Literal secrets (database passwords) that must never be printed. */
  secrets?: readonly string[];
  stream?: NodeJS.WritableStream;
}

// What winston's transports write: triple-beam's MESSAGE, the formatted line.
const MESSAGE = Symbol.for('message');
// For the rare line plain JSON.stringify refuses (a BigInt, a cycle): winston's own format.
const safeJson = winston.format.json();

/**
 * One format for the whole line: the time, secrets scrubbed from every string field (and Error),
 * `message` renamed `msg`, keys sorted, JSON. One pass and the native JSON.stringify instead of
 * five chained formats and safe-stable-stringify, which winston's json format configures anew
 * for every line: this runs once per request (the access log).
 */
function jsonLine(secrets: readonly string[]): winston.Logform.Format {
  return winston.format((info) => {
    const fields = info as Record<string, unknown>;
    fields.time = new Date().toISOString();
    for (const key of Object.keys(fields)) {
      const v = fields[key];
      if (typeof v === 'string') fields[key] = scrub(v, secrets);
      else if (v instanceof Error) fields[key] = scrub(`${v.name}: ${v.message}`, secrets);
    }
    // The contract for log lines is `msg` and `time`.
    fields.msg = fields.message;
    delete fields.message;
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(fields).sort()) sorted[key] = fields[key];
    try {
      fields[MESSAGE as unknown as string] = JSON.stringify(sorted);
    } catch {
      return safeJson.transform(info, safeJson.options);
    }
    return info;
  })();
}

export function createLogger(options: LoggerOptions): Logger {
  const secrets = secretForms(options.secrets ?? []);
  const transport = options.stream
    ? new winston.transports.Stream({ stream: options.stream })
    : new winston.transports.Console();
  const logger = winston.createLogger({
    level: options.level,
    defaultMeta: options.base,
    format: jsonLine(secrets),
    transports: [transport],
  });
  // Shutdown ends the logger (`flushLogger`) a moment before the process exits; a line logged in
  // that moment (a pool closing late, a request still settling) is dropped. Unheard, the stream's
  // `write after end` error is an uncaught exception, which turns a clean exit into a crash. Any
  // other error of the logger goes to stderr instead of ending the worker.
  logger.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'ERR_STREAM_WRITE_AFTER_END') return;
    process.stderr.write(`keel: logger error: ${err.message}\n`);
  });
  return logger;
}

/** Writes one line as `logger.child(meta).info(msg, fields)` would (see `createLineWriter`). */
export type LineWriter = (msg: string, fields: Record<string, unknown>) => void;

/**
 * The access log's writer: the line the root logger would write for `child(meta).info(msg,
 * fields)`, made by the same format and handed straight to the stream, without winston's
 * object-mode stream chain (~8 µs of CPU a line, and there is a line per request). Writes
 * nothing when the level is above `info`, or once the stream has ended.
 */
export function createLineWriter(
  options: LoggerOptions & { stream: BatchedStream; meta: Record<string, unknown> },
): LineWriter {
  const levels = winston.config.npm.levels;
  const format = jsonLine(secretForms(options.secrets ?? []));
  const fields = { ...options.base, ...options.meta, level: 'info' };
  if ((levels[options.level] ?? 0) < (levels.info ?? 0)) return () => undefined;
  return (msg, meta) => {
    if (options.stream.writableEnded) return;
    const info = format.transform({ ...fields, ...meta, message: msg }, format.options);
    if (info) options.stream.write(`${(info as Record<symbol, string>)[MESSAGE]}\n`);
  };
}

/**
 * Lines leave in one write per 50 ms. Under PM2 every stdout write is an IPC message to the
 * daemon, so one write per line costs more than the request it logs; 50 ms is invisible in a
 * log and batches dozens of lines under load. Shutdown flushes what is pending.
 */
export interface BatchedStream extends Writable {
  flush(): void;
}

const BATCH_MS = 50;

export function createBatchedStream(out: NodeJS.WritableStream): BatchedStream {
  let pending: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    out.write(text);
  };
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      pending.push(typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
      if (!scheduled) {
        scheduled = true;
        setTimeout(flush, BATCH_MS).unref();
      }
      callback();
    },
    final(callback) {
      flush();
      callback();
    },
  });
  return Object.assign(stream, { flush });
}

/** Resolves once everything written so far has left the logger (shutdown calls this). */
export function flushLogger(logger: Logger, timeoutMs = 1000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    timer.unref();
    logger.once('finish', () => {
      clearTimeout(timer);
      resolve();
    });
    logger.end();
  });
}
