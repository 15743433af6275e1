import { explainConnectError } from '../../../../src/cli/diagnose/connections';

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
