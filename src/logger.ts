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

export function createLogger(options: LoggerOptions): Logger {
  const secrets = secretForms(options.secrets ?? []);
  const redact = winston.format((info) => {
    for (const key of Object.keys(info)) {
      const v = info[key];
      if (typeof v === 'string') info[key] = scrub(v, secrets);
      else if (v instanceof Error) info[key] = scrub(`${v.name}: ${v.message}`, secrets);
    }
    if (typeof info.message === 'string') info.message = scrub(info.message, secrets);
    return info;
  });
  const rename = winston.format((info) => {
    // The contract for log lines is `msg` and `time`.
    info.msg = info.message;
    delete (info as { message?: unknown }).message;
    return info;
  });
  const transport = options.stream
    ? new winston.transports.Stream({ stream: options.stream })
    : new winston.transports.Console();
  return winston.createLogger({
    level: options.level,
    defaultMeta: options.base,
    format: winston.format.combine(
      winston.format.timestamp({ alias: 'time' }),
      redact(),
      rename(),
      winston.format((info) => {
        delete (info as { timestamp?: unknown }).timestamp;
        return info;
      })(),
      winston.format.json(),
    ),
    transports: [transport],
  });
}

/**
 * Lines leave in one write per 50 ms. Under PM2 every stdout write is an IPC message to the
 * daemon, so one write per line costs more than the request it logs; 50 ms is invisible in a
 * log and batches dozens of lines under load. Shutdown flushes what is pending.
 */
export interface BatchedStream extends NodeJS.WritableStream {
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
