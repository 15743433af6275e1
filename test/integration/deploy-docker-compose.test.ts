/**
 * deploy/docker/compose.yaml as written, with stand-in images where the engine has them (a
 * test-only override adds the session label to every container, publishes Postgres on
 * 127.0.0.1 so the ledger can be checked from here, and probes Postgres every 1 s instead of 2 s:
 * PgBouncer and the migration start on its first healthy probe):
 *  - load through HAProxy reaches both replicas, and the replicas reach Postgres through PgBouncer;
 *  - Postgres, then PgBouncer, restarted under load: every logical operation (a keyed transfer
 *    retried on 503 or a lost connection, as the contract allows) ends with one final answer,
 *    each 201 transfer exists once, and the ledger's invariants hold;
 *  - Prometheus's HTTP API reports both replicas up.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  buildKeelImage,
  compose,
  describeWithEngine,
  docker,
  nodeBase,
  poll,
  ROOT,
  SESSION,
  standInOr,
  statusOf,
} from '../support/docker';
import { retryingLoad, type Operation } from '../support/docker-load';
import { checkInvariants, seedAccounts } from '../support/ledger';
import { psql } from '../support/postgres';

const PASSWORD = 'keel-compose-pw';
const COMPOSE_FILE = path.join(ROOT, 'deploy', 'docker', 'compose.yaml');
const SERVICES = ['postgres', 'pgbouncer', 'migrate', 'keel1', 'keel2', 'lb', 'prometheus'];

describeWithEngine('deploy/docker compose.yaml', () => {
  const project = `${SESSION}-compose-${process.pid}`.toLowerCase().replace(/[^a-z0-9_-]/g, '');
  let dir: string;
  let files: string[];
  let env: Record<string, string>;
  let lb: string;
  let up = false;

  const dc = (args: string[], timeoutMs?: number) => compose(project, files, args, env, timeoutMs);
  async function portOf(service: string, port: number): Promise<number> {
    const out = (await dc(['port', service, String(port)])).stdout.trim();
    const n = Number(/:(\d+)$/.exec(out)?.[1]);
    if (!n) throw new Error(`${service}:${port} is not published (${out})`);
    return n;
  }
  const dbUrl = async () =>
    `postgres://keel:${PASSWORD}@127.0.0.1:${await portOf('postgres', 5432)}/keel`;

  beforeAll(async () => {
    const t0 = Date.now();
    // Seconds of each phase, logged below: where a slow `compose up` spends its time.
    const phases: Record<string, number> = {};
    const phase = (name: string, from: number) => (phases[name] = Date.now() - from);
    const keel = await buildKeelImage();
    phase('keelImageMs', t0);
    const standInBouncer = await standInOr('', 'keel-standin/pgbouncer:latest');
    env = {
      KEEL_IMAGE: keel.image,
      NODE_IMAGE: await nodeBase(),
      POSTGRES_IMAGE:
        process.env.KEEL_TEST_COMPOSE_PG_IMAGE ||
        (await standInOr('postgres:17', 'keel-standin/postgres:17')),
      PGBOUNCER_IMAGE: standInBouncer || 'edoburu/pgbouncer:latest',
      PROMETHEUS_IMAGE: await standInOr('prom/prometheus:latest', 'keel-standin/prometheus:latest'),
      // Any Debian bookworm root serves the balancer's image (it installs Debian's haproxy).
      LB_BASE_IMAGE: await standInOr('debian:bookworm-slim', 'keel-standin/node:24-bookworm-slim'),
      LB_IMAGE: 'keel-test/haproxy:latest',
      POSTGRES_PASSWORD: PASSWORD,
      KEEL_LB_PUBLISH: '127.0.0.1:',
      PROMETHEUS_PUBLISH: '127.0.0.1:',
      // The stand-in is Debian's PgBouncer 1.18: no max_prepared_statements, so no prepared
      // statements through it. edoburu/pgbouncer (>= 1.21) keeps the compose defaults.
      ...(standInBouncer ? { DB_PREPARE: 'false', PGBOUNCER_MAX_PREPARED_STATEMENTS: '' } : {}),
    };
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-compose-'));
    const override = path.join(dir, 'test-override.yaml');
    const label = `      keel.test.session: '${SESSION}'\n`;
    fs.writeFileSync(
      override,
      'services:\n' +
        SERVICES.map(
          (s) =>
            `  ${s}:\n    labels:\n${label}` +
            (s === 'postgres'
              ? "    ports: ['127.0.0.1::5432']\n    healthcheck:\n      interval: 1s\n"
              : '') +
            (s === 'lb'
              ? `    build:\n      labels:\n        keel.test.kept: deploy-docker\n`
              : ''),
        ).join(''),
    );
    files = [COMPOSE_FILE, override];
    let t = Date.now();
    await dc(['build', 'lb'], 600_000);
    phase('lbImageMs', t);
    up = true;
    t = Date.now();
    await dc(['up', '-d'], 600_000);
    phase('upMs', t);
    t = Date.now();
    lb = `http://127.0.0.1:${await portOf('lb', 8080)}`;
    await poll(
      '/readyz through the balancer',
      async () => ((await statusOf(`${lb}/readyz`)) === 200 ? true : undefined),
      180_000,
      500,
    );
    phase('readyMs', t);
    console.log(JSON.stringify({ composeUpMs: Date.now() - t0, phases, images: env }));
  }, 900_000);

  afterAll(async () => {
    if (up) {
      const t0 = Date.now();
      await dc(['down', '-v', '--remove-orphans'], 180_000).catch(async (e: Error) => {
        const ps = await dc(['ps']).catch(() => ({ stdout: '' }));
        process.stderr.write(`compose down failed: ${e.message}\n${ps.stdout}\n`);
      });
      console.log(JSON.stringify({ composeDownMs: Date.now() - t0 }));
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }, 200_000);

  test('both replicas answer through the balancer, via PgBouncer; restarts of Postgres and PgBouncer fail no operation', async () => {
    const accounts = await seedAccounts(lb, 8, 10_000);
    const load = retryingLoad({
      base: lb,
      accounts,
      concurrency: 8,
      opDeadlineMs: 60_000,
      maxOps: 20_000,
    });
    const served = async () => new Set(load.ops.flatMap((o) => o.replicas)).size;
    await poll(
      'answers from both replicas',
      async () => ((await served()) === 2 ? true : undefined),
      30_000,
    );

    // The replicas' sessions on Postgres come from PgBouncer's address, not their own.
    const bouncerIp = (
      await docker([
        'inspect',
        '-f',
        '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}',
        `${project}_pgbouncer_1`,
      ])
    ).stdout
      .trim()
      .split(' ')[0];
    // `apps` names each address's sessions in the log (an address besides PgBouncer's was seen
    // twice in eight runs when this sample came ~2 s sooner after the start: not yet explained).
    const sessions = await psql<{ addr: string; n: number; apps: string }>(
      await dbUrl(),
      `select host(client_addr) as addr, count(*)::int as n,
          string_agg(distinct application_name || ' ' || state, ', ') as apps
        from pg_stat_activity where application_name like 'keel:%' and state is not null group by 1`,
    );

    const okBefore = (): number => load.ops.filter((o) => o.status !== undefined).length;
    const progress = async (what: string) => {
      const n = okBefore();
      await poll(
        `operations after ${what}`,
        async () => (okBefore() > n + 50 ? true : undefined),
        90_000,
      );
    };
    const timeline: Record<string, number> = {};
    const t0 = Date.now();
    await progress('start');
    await dc(['restart', 'postgres'], 120_000);
    timeline.postgresRestartedMs = Date.now() - t0;
    await progress('the Postgres restart');
    await dc(['restart', 'pgbouncer'], 120_000);
    timeline.pgbouncerRestartedMs = Date.now() - t0;
    await progress('the PgBouncer restart');
    const ops = await load.stop();
    timeline.loadMs = Date.now() - t0;

    const unfinished = ops.filter((o) => o.status === undefined);
    const byStatus = tally(ops);
    const retried = ops.filter((o) => o.retried.length > 0);
    console.log(
      JSON.stringify({
        scenario: 'compose: load through HAProxy, Postgres then PgBouncer restarted',
        ops: ops.length,
        byStatus,
        retriedOps: retried.length,
        retryCauses: tallyRetries(retried),
        replicas: countReplicas(ops),
        sessionsByAddress: sessions,
        pgbouncerIp: bouncerIp,
        timeline,
      }),
    );
    expect(unfinished).toEqual([]);
    expect(Object.keys(byStatus).sort()).toEqual(expect.arrayContaining(['200', '201']));
    expect(Object.keys(byStatus).filter((s) => !['200', '201', '409'].includes(s))).toEqual([]);
    expect(Object.keys(countReplicas(ops)).sort()).toEqual(['keel1', 'keel2']);
    expect(sessions.map((s) => s.addr)).toEqual([bouncerIp]);

    // Exactly once: each 201 transfer exists once, under its key, and nothing else was applied.
    const transfers = ops.filter((o) => o.kind === 'transfer');
    const ok = transfers
      .filter((o) => o.status === 201)
      .map((o) => ({ id: o.transferId!, key: o.key }));
    const refusedKeys = transfers.filter((o) => o.status === 409).map((o) => o.key);
    const url = await dbUrl();
    await checkInvariants(url, { okTransfers: ok, refusedKeys });
    const [rows] = await psql<{ n: number }>(url, 'select count(*)::int as n from transfers');
    expect(rows!.n).toBe(ok.length);
  }, 600_000);

  test('Prometheus reports both replicas up', async () => {
    const prom = `http://127.0.0.1:${await portOf('prometheus', 9090)}`;
    const targets = await poll(
      'both keel targets up',
      async () => {
        const res = await fetch(`${prom}/api/v1/targets?state=active`);
        const body = (await res.json()) as {
          data: { activeTargets: Array<{ labels: Record<string, string>; health: string }> };
        };
        const keel = body.data.activeTargets.filter((t) => t.labels.job === 'keel');
        return keel.length === 2 && keel.every((t) => t.health === 'up') ? keel : undefined;
      },
      60_000,
      1000,
    );
    expect(targets.map((t) => t.labels.instance).sort()).toEqual(['keel1:3000', 'keel2:3000']);
    const q = await fetch(`${prom}/api/v1/query?query=${encodeURIComponent('up{job="keel"}')}`);
    const result = ((await q.json()) as { data: { result: Array<{ value: [number, string] }> } })
      .data.result;
    expect(result.map((r) => r.value[1])).toEqual(['1', '1']);
  }, 120_000);
});

function tally(ops: Operation[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of ops) {
    const k = o.status === undefined ? 'unfinished' : String(o.status);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

function tallyRetries(ops: Operation[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of ops) for (const r of o.retried) out[r] = (out[r] ?? 0) + 1;
  return out;
}

function countReplicas(ops: Operation[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of ops) for (const r of o.replicas) out[r] = (out[r] ?? 0) + 1;
  return out;
}
