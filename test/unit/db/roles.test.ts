/** The role-change counter behind the flapping-primary alert (keel_db_role_changes_total). */
import { noteRole } from '../../../src/db/hosts';
import { createDbStats } from '../../../src/metrics/db-stats';

const err = (code: string, role?: string) => Object.assign(new Error(code), { code, role });

test('a failover counts once each way; repeats of the same role and other errors do not count', () => {
  const stats = createDbStats();
  noteRole(stats, null); // the first primary seen is no change
  noteRole(stats, err('ECONNREFUSED')); // says nothing about the role
  expect(stats.roleChanges).toEqual({ primary: 0, standby: 0, read_only: 0 });
  noteRole(stats, err('25006')); // the old primary refuses writes
  noteRole(stats, err('25006'));
  noteRole(stats, err('TARGET_SESSION_ATTRS', 'standby')); // only a standby answers
  noteRole(stats, null); // the promoted standby answers
  noteRole(stats, null);
  expect(stats.roleChanges).toEqual({ primary: 1, standby: 1, read_only: 1 });
  expect(stats.role).toBe('primary');
});

test('a worker that starts on a standby counts it', () => {
  const stats = createDbStats();
  noteRole(stats, err('TARGET_SESSION_ATTRS', 'standby'));
  noteRole(stats, null);
  expect(stats.roleChanges).toEqual({ primary: 1, standby: 1, read_only: 0 });
});
