/** A logger whose JSON lines a unit test reads back, parsed, in `lines`. */
import { PassThrough } from 'node:stream';
import { createLogger, type Logger } from '../../src/logger';

export function captureLogs(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const stream = new PassThrough();
  const lines: Array<Record<string, unknown>> = [];
  stream.on('data', (d: Buffer) => {
    for (const l of d.toString().split('\n')) if (l) lines.push(JSON.parse(l));
  });
  return { log: createLogger({ level: 'debug', base: {}, stream }), lines };
}
