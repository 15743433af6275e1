import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { DUPLICATE_SIGNAL_WINDOW_MS, installCrashHandlers } from '../../../src/lifecycle/crash';
import { createLogger } from '../../../src/logger';

function setup() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  const logger = createLogger({ level: 'debug', base: {}, stream });
  const proc = new EventEmitter() as EventEmitter & { exitCodes: number[] };
  proc.exitCodes = [];
  (proc as unknown as { exit: (c: number) => void }).exit = (c) => proc.exitCodes.push(c);
  const stops: Array<[string, number]> = [];
  let clock = 1_000_000;
  installCrashHandlers({
    logger,
    shutdown: (reason, code = 0) => {
      stops.push([reason, code]);
      return Promise.resolve();
    },
    proc: proc as unknown as NodeJS.Process,
    now: () => clock,
  });
  return { proc, stops, lines, advance: (ms: number) => (clock += ms) };
}

test('the first SIGTERM, SIGINT or PM2 shutdown message starts the graceful shutdown', () => {
  for (const emit of [
    (p: EventEmitter) => p.emit('SIGTERM'),
    (p: EventEmitter) => p.emit('SIGINT'),
    (p: EventEmitter) => p.emit('message', 'shutdown'),
  ]) {
    const { proc, stops } = setup();
    emit(proc);
    expect(stops).toHaveLength(1);
    expect(stops[0]![1]).toBe(0);
    expect(proc.exitCodes).toEqual([]);
  }
});

test('the same stop delivered twice (process group, then PM2 relaying it) keeps draining', () => {
  const { proc, stops } = setup();
  proc.emit('SIGINT'); // Ctrl+C reaches the whole group
  proc.emit('SIGINT'); // PM2 relays its own stop a moment later
  expect(stops).toEqual([['SIGINT', 0]]);
  expect(proc.exitCodes).toEqual([]);
});

test('a second signal after the duplicate window exits at once with 1', () => {
  const { proc, advance } = setup();
  proc.emit('SIGTERM');
  advance(DUPLICATE_SIGNAL_WINDOW_MS);
  proc.emit('SIGINT');
  expect(proc.exitCodes).toEqual([1]);
});

test('an uncaught exception is logged with its request id and shuts down with 1', () => {
  const { proc, stops, lines } = setup();
  proc.emit('uncaughtException', Object.assign(new Error('boom'), { reqId: 'req-7' }));
  expect(stops).toEqual([['uncaught exception', 1]]);
  expect(lines[0]).toMatchObject({
    level: 'error',
    msg: 'uncaught exception',
    reqId: 'req-7',
    err: 'Error: boom',
  });
});

test('an unhandled rejection of a non-error still shuts down with 1', () => {
  const { proc, stops, lines } = setup();
  proc.emit('unhandledRejection', 'just a string');
  expect(stops).toEqual([['unhandled rejection', 1]]);
  expect(lines[0]).toMatchObject({ msg: 'unhandled rejection', err: 'Error: just a string' });
});
