/**
 * `keel diagnose --idle-probe` measures an idle cutoff it is not told about: the fault proxy
 * cuts idle connections at 2 s (FIN, RST, or silently), a Postgres closes idle sessions itself.
 * The assertions are on what the probe reports, never on how long the run took.
 */
import { byId, diagnoseJson } from '../support/diagnose';
import { createFaultProxy, type FaultProxy, type IdleCutHow } from '../support/fault-proxy';
import { psql, startTestPostgres, type TestPostgres } from '../support/postgres';

const CUTOFF_MS = 2000;
// The proxy sweeps every 250 ms, so it cuts a pair idle for 2.00 to 2.25 s.
const CUT_WINDOW: [number, number] = [CUTOFF_MS, CUTOFF_MS + 250];
const PROBE = ['--idle-probe', '--max', '5', '--connections', '6', '--probe-timeout', '1'];
const ENV = { DB_KEEPALIVE_S: '1', DB_IDLE_CUTOFF_S: '300', WEB_CONCURRENCY: '1' };

let pg: TestPostgres;
let proxy: FaultProxy;

beforeAll(async () => {
  pg = await startTestPostgres({ localOnly: true });
  proxy = await createFaultProxy({ targetHost: pg.host, targetPort: pg.port });
});
afterAll(async () => {
  await proxy?.close();
  await pg?.destroy();
});

// Every probe of the file side by side, the three kinds of cut each through its own proxy: a
// probe mostly waits (idle connections, a sweep every 250 ms), so they do not disturb one
// another's clock.
test.concurrent.each<[IdleCutHow, string]>([
  ['fin', 'fin'],
  ['rst', 'rst'],
  ['silent', 'silence'],
])(
  'a proxy cutting idle connections at 2 s (%s) is measured: bracket, kind of death, DB_IDLE_CUTOFF_S',
  async (how, death) => {
    const own = await createFaultProxy({ targetHost: pg.host, targetPort: pg.port });
    own.setIdleCut(CUTOFF_MS, how);
    try {
      const { code, report } = await diagnoseJson(
        { ...ENV, DATABASE_URL: own.url(pg.url()) },
        PROBE,
      );
      const probe = report.idleProbe!;
      expect(probe.death).toBe(death);
      expect(probe.serverSide).toBe(false);
      const [lo, hi] = probe.bracketMs!;
      // The measured bracket overlaps the window in which the proxy really cuts...
      expect(lo).toBeLessThanOrEqual(CUT_WINDOW[1]);
      expect(hi).toBeGreaterThanOrEqual(CUT_WINDOW[0]);
      // ... and is narrow: the cutoff is reported within 0.3 s.
      expect(Math.abs(probe.cutoffMs! - CUTOFF_MS)).toBeLessThanOrEqual(300);
      expect(probe.recommendedIdleCutoffS).toBe(2);
      // DB_IDLE_CUTOFF_S=300 is far above what this path allows: a failure naming the fix.
      const line = byId(report, 'idle.cutoff')!;
      expect(line.status).toBe('fail');
      expect(line.fix).toBe('set DB_IDLE_CUTOFF_S=2');
      expect(code).toBe(2);
      // A userspace proxy never sees TCP keepalive probes: keepalive does not save the connection.
      expect(probe.keepalive).toMatchObject({ keepAliveS: 1, survived: false });
      expect(probe.keepalive!.idleMs).toBeGreaterThan(hi);
      expect(byId(report, 'idle.keepalive')!.summary).toMatch(
        /does not keep a connection past the cutoff/,
      );
    } finally {
      await own.close();
    }
  },
);

test.concurrent(
  'nothing cut within --max: cutoffMs is null and the configured cutoff stands',
  async () => {
    const { report } = await diagnoseJson({ ...ENV, DATABASE_URL: proxy.url(pg.url()) }, [
      '--idle-probe',
      '--max',
      '1',
      '--connections',
      '2',
    ]);
    expect(report.idleProbe).toMatchObject({
      cutoffMs: null,
      bracketMs: null,
      death: null,
      keepalive: null,
    });
    expect(byId(report, 'idle.cutoff')!.status).toBe('ok');
  },
);

test.concurrent(
  "the server's own idle_session_timeout is named as such, not as a proxy cutoff",
  async () => {
    // Set on a database of the file's server: every session there runs with it, as with a
    // postgresql.conf setting, without starting a second server.
    const strictUrl = await pg.createDatabase();
    const database = new URL(strictUrl).pathname.slice(1);
    await psql(pg.url(), `alter database "${database}" set idle_session_timeout = '2s'`);
    const { code, report } = await diagnoseJson({ ...ENV, DATABASE_URL: strictUrl }, PROBE);
    const probe = report.idleProbe!;
    expect(probe.death).toBe('server-timeout');
    expect(probe.serverSide).toBe(true);
    const [lo, hi] = probe.bracketMs!;
    // The server's timer fires on time, or a little late on a loaded machine.
    expect(lo).toBeLessThanOrEqual(CUT_WINDOW[1]);
    expect(hi).toBeGreaterThanOrEqual(CUTOFF_MS);
    expect(byId(report, 'idle.cutoff')!.fix).toMatch(/idle_session_timeout = 0/);
    // The server check sees the setting too, before any probe.
    expect(byId(report, 'server.idle_session_timeout')).toMatchObject({
      status: 'fail',
      value: 2000,
    });
    expect(code).toBe(2);
  },
);
