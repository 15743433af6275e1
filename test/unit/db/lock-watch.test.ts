/** While a migration waits for a lock: one line every few seconds naming the blockers, no more. */
import { createLockWatch, describeBlocker, type Blocker } from '../../../src/db/lock-watch';
import { captureLogs as logs } from '../../support/log-lines';

const flushed = () => new Promise((r) => setImmediate(r));

const holder: Blocker = {
  pid: 4242,
  application: 'psql',
  state: 'idle in transaction',
  forMs: 41_300,
  query: 'select * from accounts',
};

test('a blocker names its pid, application, state, age and first words', () => {
  expect(describeBlocker(holder)).toBe(
    'pid 4242 psql (idle in transaction, 41.3 s): select * from accounts',
  );
  expect(describeBlocker({ ...holder, application: '', state: '' })).toContain(
    'pid 4242 unnamed (unknown, 41.3 s)',
  );
});

test('polls while the work waits; logs at the first sighting, then at most every few seconds', async () => {
  const { log, lines } = logs();
  const clock = { t: 0 };
  const watch = createLockWatch({ log, now: () => clock.t, pollMs: 1, logEveryMs: 3000 });
  let polls = 0;
  let finish!: () => void;
  const work = new Promise<string>((r) => (finish = () => r('done')));
  const find = async () => {
    polls += 1;
    clock.t += 1000; // each poll, a second passes
    if (polls === 10) finish();
    return polls === 1 ? [] : [holder];
  };
  await expect(watch.during(work, find, { migration: '0006.sql' })).resolves.toBe('done');
  await flushed();
  const waits = lines.filter((l) => l.msg === 'migration waits for a lock');
  // Sightings at t = 2 s .. 10 s: logged at 2, 5 and 8.
  expect(waits.map((l) => l.waitingMs)).toEqual([2000, 5000, 8000]);
  expect(waits[0]).toMatchObject({
    level: 'warn',
    migration: '0006.sql',
    blockers: ['pid 4242 psql (idle in transaction, 41.3 s): select * from accounts'],
  });
  expect(watch.last()).toEqual([holder]);
  // A lock timeout reports the last blockers too, but only when a line is due.
  watch.timedOut({ migration: '0006.sql' });
  await flushed();
  expect(lines.filter((l) => l.msg === 'migration waits for a lock')).toHaveLength(3);
  clock.t += 3000;
  watch.timedOut({ migration: '0006.sql' });
  await flushed();
  expect(lines.filter((l) => l.msg === 'migration waits for a lock')).toHaveLength(4);
});

test('nothing blocks: no line at all', async () => {
  const { log, lines } = logs();
  const watch = createLockWatch({ log, pollMs: 1 });
  let n = 0;
  let finish!: () => void;
  const work = new Promise<void>((r) => (finish = r));
  await watch.during(
    work,
    async () => {
      if (++n === 5) finish();
      return [];
    },
    {},
  );
  watch.timedOut({});
  await flushed();
  expect(lines).toEqual([]);
  expect(watch.last()).toEqual([]);
});
