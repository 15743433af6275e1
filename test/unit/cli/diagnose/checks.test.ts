import { parseDiagnoseArgs, UsageError } from '../../../../src/cli/diagnose/args';
import { explainConnectError } from '../../../../src/cli/diagnose/connections';
import { scrub } from '../../../../src/cli/diagnose/report';
import { addedLines, cgroupCpus } from '../../../../src/cli/diagnose/self';

const where = { user: 'keel', db: 'ledger', hostPort: 'db.example:5432' };

test('each authentication failure gets its own kind and words', () => {
  const kinds = [
    [
      { code: '28P01', message: 'password authentication failed for user "keel"' },
      'wrong_password',
    ],
    [{ code: '3D000', message: 'database "ledger" does not exist' }, 'unknown_database'],
    [
      {
        code: '28000',
        message:
          'no pg_hba.conf entry for host "10.0.0.5", user "keel", database "ledger", no encryption',
      },
      'no_hba_entry',
    ],
    [{ code: '28000', message: 'role "keel" does not exist' }, 'unknown_role'],
    [{ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' }, 'refused'],
    [{ code: 'ENOTFOUND', message: 'getaddrinfo ENOTFOUND' }, 'unknown_host'],
    [{ code: 'CONNECT_TIMEOUT', message: 'write CONNECT_TIMEOUT' }, 'timeout'],
    [{ code: '08P01', message: 'no such database: ledger' }, 'unknown_database'],
  ] as const;
  for (const [err, kind] of kinds) expect(explainConnectError(err, where).kind).toBe(kind);
  expect(explainConnectError(kinds[2][0], where).fix).toMatch(/sslmode=require/);
});

test('scrub hides a secret in plain and URL-encoded form', () => {
  expect(scrub('a p@ss:w/rd b p%40ss%3Aw%2Frd c', ['p@ss:w/rd'])).toBe('a *** b *** c');
});

test('cgroup CPU quota: v2 cpu.max, v1 cfs files, none', () => {
  expect(cgroupCpus('150000 100000\n', null, null)).toBe(1.5);
  expect(cgroupCpus('max 100000\n', null, null)).toBeNull();
  expect(cgroupCpus(null, '50000\n', '100000\n')).toBe(0.5);
  expect(cgroupCpus(null, '-1\n', '100000\n')).toBeNull();
});

test('the lines a patch adds, per target file', () => {
  const patch = [
    '+++ b/node_modules/x/a.js',
    '@@ -1 +1 @@',
    '-old',
    '+new line',
    '+',
    ' ctx',
    '+++ b/node_modules/x/b.js',
    '+other',
  ].join('\n');
  expect(addedLines(patch)).toEqual(
    new Map([
      ['node_modules/x/a.js', ['new line']],
      ['node_modules/x/b.js', ['other']],
    ]),
  );
});

test('arguments: `keel diagnose` forms, defaults, bounds', () => {
  expect(
    parseDiagnoseArgs(['diagnose', '--idle-probe', '--max', '600', '--connections', '4']),
  ).toMatchObject({ idleProbe: true, maxMs: 600_000, connections: 4, json: false });
  expect(parseDiagnoseArgs([])).toMatchObject({
    maxMs: 900_000,
    connections: 8,
    roundTrips: 100,
    probeTimeoutMs: 5000,
  });
  expect(() => parseDiagnoseArgs(['--max', 'soon'])).toThrow(UsageError);
  expect(() => parseDiagnoseArgs(['--connections', '0'])).toThrow(
    /--connections must be a number from 1 to 64/,
  );
  expect(() => parseDiagnoseArgs(['migrate'])).toThrow(/unknown command or argument: migrate/);
});
