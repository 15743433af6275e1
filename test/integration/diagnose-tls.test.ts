/** `keel diagnose` over TLS: negotiated as configured, seen by the server, and the idle probe still tells how a cut connection dies. */
import { byId, diagnoseJson } from '../support/diagnose';
import { createFaultProxy, type FaultProxy } from '../support/fault-proxy';
import type { TestPostgres } from '../support/postgres';
import { haveOpenssl, startTlsPostgres } from '../support/tls-postgres';

let pg: TestPostgres;
let proxy: FaultProxy;
const maybe = haveOpenssl() ? test : test.skip;
const ENV = { WEB_CONCURRENCY: '1', DB_KEEPALIVE_S: '1' };

beforeAll(async () => {
  if (!haveOpenssl()) return;
  pg = await startTlsPostgres();
  proxy = await createFaultProxy({ targetHost: pg.host, targetPort: pg.port });
});
afterAll(async () => {
  await proxy?.close();
  await pg?.destroy();
});

maybe(
  'sslmode=require: TLS offered and negotiated, pg_stat_ssl shows the session encrypted',
  async () => {
    const { report } = await diagnoseJson({ ...ENV, DATABASE_URL: `${pg.url()}?sslmode=require` }, [
      '--round-trips',
      '5',
    ]);
    expect(byId(report, 'path.tls')).toMatchObject({
      status: 'ok',
      value: 'tls',
      data: { offered: true, configured: 'require' },
    });
    expect(byId(report, 'path.pg_stat_ssl')).toMatchObject({ status: 'ok', data: { ssl: true } });
    expect(byId(report, 'path.pg_stat_ssl')!.value).toMatch(/^TLSv1\.[23] /);
  },
);

maybe('over TLS a proxy that cuts idle connections at 2 s with a FIN is measured', async () => {
  proxy.setIdleCut(2000, 'fin');
  try {
    const { report } = await diagnoseJson(
      { ...ENV, DATABASE_URL: `${proxy.url(pg.url())}?sslmode=require` },
      ['--idle-probe', '--max', '5', '--connections', '6', '--probe-timeout', '1'],
    );
    const probe = report.idleProbe!;
    expect(probe.death).toBe('fin');
    expect(Math.abs(probe.cutoffMs! - 2000)).toBeLessThanOrEqual(300);
  } finally {
    proxy.setIdleCut(null);
  }
});
