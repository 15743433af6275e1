/**
 * target_session_attrs against a real primary and hot standby (PostgreSQL >= 14 reports
 * in_hot_standby and default_transaction_read_only=off on a standby, which unpatched
 * postgres.js 3.4.9 took for read-write), and the bound on a connect over several hosts: a pass
 * tries each host once, then the query fails with the reason instead of looping forever.
 */
import postgres from 'postgres';
import { freePort } from '../support/postgres';
import { startReplicationPair, type ReplicationPair } from '../support/replication';

let pair: ReplicationPair;

beforeAll(async () => {
  pair = await startReplicationPair();
});

afterAll(async () => {
  await pair?.destroy();
});

/** A URL over `ports` in that order, with the given target_session_attrs. */
function hostsUrl(ports: number[], attrs?: string): string {
  const u = new URL(pair.primary.url());
  const hosts = ports.map((p) => `127.0.0.1:${p}`).join(',');
  return `postgres://${u.username}:${u.password}@${hosts}/postgres${attrs ? `?target_session_attrs=${attrs}` : ''}`;
}

/** Which role the session it lands on has: 'standby' or 'primary'. */
async function landsOn(url: string): Promise<string> {
  const sql = postgres(url, { max: 1, connect_timeout: 5, onnotice: () => undefined });
  try {
    const [row] = await sql<{ r: boolean }[]>`select pg_is_in_recovery() as r`;
    return row!.r ? 'standby' : 'primary';
  } finally {
    await sql.end({ timeout: 1 });
  }
}

test.each([
  ['read-write', 'primary'],
  ['primary', 'primary'],
  ['any', 'standby'],
  [undefined, 'standby'],
  ['standby', 'standby'],
  ['prefer-standby', 'standby'],
  ['read-only', 'standby'],
])(
  'standby listed first, target_session_attrs=%s: the session is on the %s',
  async (attrs, role) => {
    expect(await landsOn(hostsUrl([pair.standby.port, pair.primary.port], attrs))).toBe(role);
  },
);

test.each([
  ['read-write', 'primary'],
  ['primary', 'primary'],
  ['standby', 'standby'],
  ['prefer-standby', 'standby'],
  ['read-only', 'standby'],
])(
  'primary listed first, target_session_attrs=%s: the session is on the %s',
  async (attrs, role) => {
    expect(await landsOn(hostsUrl([pair.primary.port, pair.standby.port], attrs))).toBe(role);
  },
);

test('prefer-standby with no standby answering takes the primary on the last host', async () => {
  const down = await freePort();
  expect(await landsOn(hostsUrl([down, pair.primary.port], 'prefer-standby'))).toBe('primary');
});

test('no primary among the hosts: the query fails naming the standby, it does not hang', async () => {
  const down = await freePort();
  const sql = postgres(hostsUrl([pair.standby.port, down], 'read-write'), {
    max: 1,
    connect_timeout: 5,
    onnotice: () => undefined,
  });
  try {
    const err = await sql`select 1`.then(
      () => null,
      (e: unknown) => e as { code?: string; message?: string },
    );
    // The pass ended on the refused host; the standby's refusal is what the pass reports
    // when it is the last host tried.
    expect(err?.code).toBe('ECONNREFUSED');
    const standbyOnly = postgres(hostsUrl([pair.standby.port, pair.standby.port], 'primary'), {
      max: 1,
      connect_timeout: 5,
      onnotice: () => undefined,
    });
    const err2 = await standbyOnly`select 1`.then(
      () => null,
      (e: unknown) => e as { code?: string; message?: string; role?: string },
    );
    await standbyOnly.end({ timeout: 1 });
    expect(err2?.code).toBe('TARGET_SESSION_ATTRS');
    expect(err2?.role).toBe('standby');
    expect(err2?.message).toContain(`127.0.0.1:${pair.standby.port} is a standby`);
  } finally {
    await sql.end({ timeout: 1 });
  }
});

test('every host refuses: the query fails with ECONNREFUSED after one pass', async () => {
  const [p1, p2] = [await freePort(), await freePort()];
  const sql = postgres(hostsUrl([p1, p2], 'read-write'), { max: 1, onnotice: () => undefined });
  try {
    await expect(sql`select 1`).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  } finally {
    await sql.end({ timeout: 1 });
  }
});
