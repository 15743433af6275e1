import postgres from 'postgres';
import { createFaultProxy, type CloseHow, type FaultProxy } from '../support/fault-proxy';
import { freePort, startTestPostgres, type TestPostgres } from '../support/postgres';
import { until } from '../support/wait';

// Codes a driver surfaces when the socket under it goes away (Node's or postgres.js's own).
const CONNECTION_ERRORS = [
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
];
// Long enough for a local round trip many times over, short enough to keep the file fast.
const HANG_MS = 500;

type Sql = postgres.Sql<Record<string, never>>;

/** Resolves to the error code the promise rejects with, or 'resolved'. */
function errorCode(promise: PromiseLike<unknown>): Promise<string> {
  return Promise.resolve(promise).then(
    () => 'resolved',
    (err: unknown) => String((err as { code?: unknown }).code),
  );
}

async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function backendPid(sql: Sql): Promise<number> {
  const [row] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
  if (!row) throw new Error('no row');
  return row.pid;
}

describe('fault proxy in front of a real Postgres', () => {
  let pg: TestPostgres;
  let admin: Sql; // talks to Postgres directly, never through a proxy
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    pg = await startTestPostgres();
    admin = postgres(pg.url(), { max: 1, onnotice: () => undefined });
  });

  afterEach(async () => {
    for (let step = cleanups.pop(); step; step = cleanups.pop()) {
      await step().catch(() => undefined);
    }
  });

  afterAll(async () => {
    await admin?.end({ timeout: 1 });
    await pg?.destroy();
  });

  async function setup() {
    const directUrl = await pg.createDatabase();
    const database = new URL(directUrl).pathname.slice(1);
    cleanups.push(() => admin.unsafe(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`));
    const proxy = await createFaultProxy({ targetHost: pg.host, targetPort: pg.port });
    cleanups.push(() => proxy.close());
    const client = (onclose?: () => void): Sql => {
      const sql = postgres(proxy.url(directUrl), { max: 1, onnotice: () => undefined, onclose });
      cleanups.push(() => sql.end({ timeout: 1 }));
      return sql;
    };
    const backends = async (): Promise<number[]> => {
      const rows = await admin<{ pid: number }[]>`
        select pid from pg_stat_activity where datname = ${database} order by pid`;
      return rows.map((r) => r.pid);
    };
    return { proxy, client, backends };
  }

  test('pass forwards queries and large results both ways', async () => {
    const { proxy, client, backends } = await setup();
    const sql = client();
    const [row] = await sql<{ two: number; size: number }[]>`
      select 1 + 1 as two, length(${'y'.repeat(4000000)}::text) as size`;
    expect(row).toEqual({ two: 2, size: 4000000 });
    const [big] = await sql<{ big: string }[]>`select repeat('x', 4000000) as big`;
    expect(big?.big).toHaveLength(4000000);
    expect(await backends()).toEqual([await backendPid(sql)]);
    expect(proxy.stats()).toEqual({ open: 1, accepted: 1, idleCuts: 0, resets: 0, refused: 0 });
    expect(proxy.connections()).toBe(1);
  });

  test.each<CloseHow>(['fin', 'rst'])(
    'idle cut (%s) closes only connections idle longer than the cutoff',
    async (how) => {
      const { proxy, client, backends } = await setup();
      const sql = client();
      const first = await backendPid(sql);
      proxy.setIdleCut(300, how);
      // Busy for longer than the cutoff, never silent for that long: not cut.
      for (let i = 0; i < 4; i += 1) await sql`select pg_sleep(0.1)`;
      expect(proxy.stats().idleCuts).toBe(0);
      expect(await backends()).toEqual([first]);

      const idleSince = Date.now();
      await until('the idle cut', () => proxy.stats().idleCuts === 1);
      expect(Date.now() - idleSince).toBeGreaterThanOrEqual(300);
      proxy.setIdleCut(null);
      expect(proxy.connections()).toBe(0);
      await until('the backend to exit', async () => (await backends()).length === 0);

      // postgres.js either reports the closed socket or has already opened a fresh one.
      const next = await backendPid(sql).then(
        (pid) => pid,
        (err: { code?: string }) => err.code,
      );
      if (typeof next === 'number') expect(next).not.toBe(first);
      else expect(CONNECTION_ERRORS).toContain(next);
    },
  );

  test('refuse resets new connections at once and leaves open ones working', async () => {
    const { proxy, client } = await setup();
    const open = client();
    const pid = await backendPid(open);

    proxy.setMode('refuse');
    const started = Date.now();
    expect(CONNECTION_ERRORS).toContain(await errorCode(client()`select 1`));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(proxy.stats()).toMatchObject({ refused: 1, accepted: 1, open: 1 });
    expect(await backendPid(open)).toBe(pid);

    proxy.setMode('pass');
    expect(await backendPid(client())).not.toBe(pid);
  });

  test('blackhole stalls every byte without buffering, and pass resumes open connections', async () => {
    const { proxy, client, backends } = await setup();
    const open = client();
    const pid = await backendPid(open);

    proxy.setMode('blackhole');
    const stalled = client()`select 1 as one`.then(
      () => 'resolved',
      (err: { code?: string }) => String(err.code),
    );
    expect(await within(stalled, HANG_MS)).toBe('timeout');
    // The new connection was accepted and kept open, but its startup never reached Postgres.
    expect(proxy.connections()).toBe(2);
    expect(await backends()).toEqual([pid]);

    proxy.setMode('pass');
    expect(await backendPid(open)).toBe(pid);
    // Its startup bytes were dropped, not held back, so it is still stuck after `pass`.
    expect(await within(stalled, HANG_MS)).toBe('timeout');
    proxy.resetAll();
    expect(CONNECTION_ERRORS).toContain(await stalled);
  });

  test.each<CloseHow>(['rst', 'fin'])(
    'resetAll (%s) fails the in-flight query with a connection error',
    async (how) => {
      const { proxy, client } = await setup();
      let driverSawClose = false;
      const sql = client(() => (driverSawClose = true));
      const pid = await backendPid(sql);
      const inFlight = errorCode(sql`select pg_sleep(2)`);
      await until('the query to run', async () => {
        const [row] = await admin<{ n: number }[]>`
          select count(*)::int as n from pg_stat_activity where pid = ${pid} and state = 'active'`;
        return row?.n === 1;
      });

      const started = Date.now();
      proxy.resetAll(how);
      expect(CONNECTION_ERRORS).toContain(await inFlight);
      expect(Date.now() - started).toBeLessThan(1000);
      expect(proxy.stats()).toMatchObject({ resets: 1, open: 0 });

      // postgres.js 3.4.9 loses a query sent between a socket's 'error' and 'close' events
      // (it would hang forever), so wait for the driver to see the close before the next one.
      await until('the driver to see the close', () => driverSawClose);
      expect(await backendPid(sql)).not.toBe(pid);
    },
  );

  test('a down upstream resets the client, and close() is idempotent', async () => {
    const proxy: FaultProxy = await createFaultProxy({
      targetHost: '127.0.0.1',
      targetPort: await freePort(),
    });
    cleanups.push(() => proxy.close());
    const sql = postgres(proxy.url(pg.url()), { max: 1, onnotice: () => undefined });
    cleanups.push(() => sql.end({ timeout: 1 }));

    const started = Date.now();
    expect(CONNECTION_ERRORS).toContain(await errorCode(sql`select 1`));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(proxy.stats()).toMatchObject({ accepted: 1, open: 0 });

    await Promise.all([proxy.close(), proxy.close()]);
    await proxy.close();
    expect(await errorCode(sql`select 1`)).toBe('ECONNREFUSED');
  });
});
