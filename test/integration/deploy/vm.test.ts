/**
 * deploy/vm: the systemd unit passes `systemd-analyze verify`, the nginx example passes
 * `nginx -t`, and the unit's own ExecStart line, run as written with its EnvironmentFile,
 * starts Keel against a real Postgres, `pm2 reload` (its ExecReload) replaces the workers
 * through that PM2_HOME, and SIGTERM to the main process (KillMode=mixed) drains: the requests
 * in flight are answered and pm2-runtime exits 0 before TimeoutStopSec.
 *
 * systemd is not PID 1 here, so the unit is verified and its commands run from a copy with
 * paths substituted to this checkout: /usr/bin/node -> the Node running the tests, /opt/keel ->
 * the checkout, /etc/keel/keel.env and /var/lib/keel -> temp paths. User=keel is not applied
 * (the test runs as the current user) and StateDirectory= is not created by systemd.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getFresh } from '../../support/http';
import { alive, descendants, remember, slowInFlight } from '../../support/lifecycle';
import { untilValue } from '../../support/wait';
import { ensureBuilt, ROOT, TEST_ECOSYSTEM } from '../../support/pm2';
import { needs } from '../../support/prereqs';
import { freePort, startTestPostgres, type TestPostgres } from '../../support/postgres';

const DIR = path.join(ROOT, 'deploy', 'vm');
const unitText = fs.readFileSync(path.join(DIR, 'keel.service'), 'utf8');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-vm-'));
const ENV_FILE = path.join(tmp, 'keel.env');
const STATE = path.join(tmp, 'state');

function substituted(text: string): string {
  return text
    .replaceAll('/usr/bin/node', process.execPath)
    .replaceAll('/opt/keel', ROOT)
    .replaceAll('/etc/keel/keel.env', ENV_FILE)
    .replaceAll('/var/lib/keel', STATE);
}

/** [Service] settings: the last value of each key, Environment= lines collected. */
function service(text: string): { get(k: string): string; env: Record<string, string> } {
  const body = text.slice(text.indexOf('[Service]'), text.indexOf('[Install]'));
  const lines = body.split('\n').filter((l) => /^[A-Za-z]+=/.test(l));
  const kv = lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);
  const env = Object.fromEntries(
    kv
      .filter(([k]) => k === 'Environment')
      .map(([, v]) => [v!.slice(0, v!.indexOf('=')), v!.slice(v!.indexOf('=') + 1)]),
  );
  return {
    get: (k) => kv.filter(([key]) => key === k).pop()?.[1] ?? '',
    env,
  };
}

/** An EnvironmentFile as systemd reads one: VAR=value lines, # comments. */
function envFile(file: string): Record<string, string> {
  return Object.fromEntries(
    fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

const verify = (file: string) =>
  spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8', timeout: 60000 });

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('the unit and the proxy example', () => {
  needs('systemd-analyze')(
    'systemd-analyze verify: exit 0 and not one warning; a broken copy fails',
    () => {
      fs.writeFileSync(ENV_FILE, fs.readFileSync(path.join(DIR, 'keel.env.example')));
      const unit = path.join(tmp, 'keel.service');
      fs.writeFileSync(unit, substituted(unitText));
      const ok = verify(unit);
      expect({ status: ok.status, out: ok.stdout + ok.stderr }).toEqual({ status: 0, out: '' });
      // verify only warns ("ignoring") on a bad value: the empty output above is what counts.
      const badValue = path.join(tmp, 'bad-value.service');
      fs.writeFileSync(badValue, substituted(unitText).replace('KillMode=mixed', 'KillMode=bogus'));
      expect(verify(badValue).stderr).toMatch(/Failed to parse kill mode/);
      const badBin = path.join(tmp, 'bad-bin.service');
      fs.writeFileSync(
        badBin,
        substituted(unitText).replace(/^ExecStart=\S+/m, 'ExecStart=/nowhere/node'),
      );
      expect(verify(badBin)).toMatchObject({
        status: 1,
        stderr: expect.stringMatching(/not executable/),
      });
    },
  );

  test('the stop window covers PM2 kill_timeout; pm2-runtime alone gets SIGTERM', () => {
    const s = service(unitText);
    const killTimeoutS = (10000 + 5000) / 1000; // ecosystem.config.js: SHUTDOWN_TIMEOUT_MS + 5 s
    expect(Number(s.get('TimeoutStopSec'))).toBeGreaterThan(killTimeoutS);
    expect(s.get('KillMode')).toBe('mixed');
    expect(s.get('Restart')).toBe('on-failure');
    expect(s.get('User')).toBe('keel');
    expect(s.get('EnvironmentFile')).toBe('/etc/keel/keel.env');
  });

  const nginx = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => fs.existsSync(p));
  (nginx ? test : test.skip)('nginx -t accepts the reverse proxy example', () => {
    const conf = path.join(tmp, 'nginx.conf');
    fs.writeFileSync(
      conf,
      `pid ${tmp}/nginx.pid;\nerror_log ${tmp}/nginx-error.log;\nevents {}\n` +
        `http {\n  include ${path.join(DIR, 'nginx-keel.conf')};\n}\n`,
    );
    const r = spawnSync(nginx as string, ['-t', '-c', conf], { encoding: 'utf8' });
    expect(r.stderr).toMatch(/test is successful/);
    expect(r.status).toBe(0);
  });
});

describe('ExecStart as written', () => {
  let pg: TestPostgres;
  let url: string;
  let proc: ChildProcess | undefined;
  let tree: number[] = [];

  beforeAll(async () => {
    ensureBuilt();
    pg = await startTestPostgres();
    url = await pg.createDatabase();
  });
  afterAll(async () => {
    // After a failed step: pm2-runtime and every worker it started, by pid.
    if (proc?.pid && alive(proc.pid)) tree = [...tree, ...descendants(proc.pid)];
    for (const pid of [proc?.pid, ...tree]) if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    await pg?.destroy();
  });

  test('starts Keel, reloads through its PM2_HOME, and drains on SIGTERM with exit 0', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    // The example env file, with this test's database and port and a scaled-down drain.
    const example = fs.readFileSync(path.join(DIR, 'keel.env.example'), 'utf8');
    fs.writeFileSync(
      ENV_FILE,
      example
        .replace(/^DATABASE_URL=.*$/m, `DATABASE_URL=${url}`)
        .replace(/^PORT=.*$/m, `PORT=${port}`)
        .replace(/^SHUTDOWN_TIMEOUT_MS=.*$/m, 'SHUTDOWN_TIMEOUT_MS=3000'),
    );
    // One more substitution: the test ecosystem (the real one, with `web` started from
    // test/support/pm2-worker.js) mounts /__test/slow, which the production build does not have.
    const s = service(substituted(unitText).replace(`${ROOT}/ecosystem.config.js`, TEST_ECOSYSTEM));
    // What systemd passes: its own PATH, Environment=, then the EnvironmentFile.
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...s.env,
      ...envFile(s.get('EnvironmentFile')),
    };
    fs.mkdirSync(env.PM2_HOME ?? '', { recursive: true });
    const [bin, ...args] = s.get('ExecStart').split(' ');
    proc = spawn(bin as string, args, {
      cwd: s.get('WorkingDirectory'),
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    remember(proc.pid!);
    let output = '';
    proc.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    proc.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<{ code: number | null; at: number }>((r) =>
      proc!.once('exit', (code) => r({ code, at: Date.now() })),
    );
    const ready = () =>
      getFresh(`${base}/readyz`).then(
        (r) => r.status,
        () => 0,
      );
    await untilValue(ready, (st) => st === 200, 60000, `ready; output so far:\n${output}`);

    // ExecReload, with the same environment: the pm2 CLI finds pm2-runtime's daemon in PM2_HOME.
    const pm2 = (line: string) => {
      const [b, ...a] = line.split(' ');
      return execFileSync(b as string, a, { env, encoding: 'utf8', timeout: 90000 });
    };
    const pids = () =>
      (JSON.parse(pm2(`${process.execPath} ${ROOT}/node_modules/pm2/bin/pm2 jlist`)) as any[])
        .filter((p) => p.name === 'web' && p.pm2_env.status === 'online')
        .map((p) => p.pid as number)
        .sort();
    const before = await untilValue(
      async () => pids(),
      (p) => p.length === 2,
      30000,
      'two workers',
    );
    pm2(s.get('ExecReload'));
    const after = pids();
    expect(after).toHaveLength(2);
    expect(after.filter((p) => before.includes(p))).toEqual([]);
    await untilValue(ready, (st) => st === 200, 30000, 'ready after reload');

    // Slow requests on fresh connections (PM2 spreads them), all in flight at the signal.
    const slow = await slowInFlight(base, url, 6, 1500);
    tree = descendants(proc.pid!);
    const signalled = Date.now();
    // KillMode=mixed, KillSignal=SIGTERM: the main process alone.
    process.kill(proc.pid!, s.get('KillSignal') as NodeJS.Signals);
    const { code, at } = await exited;
    const answers = await slow.answers;

    expect(answers.map((a) => a.status)).toEqual(Array(6).fill(200));
    expect(code).toBe(0);
    // Gone before systemd would have sent SIGKILL.
    expect(at - signalled).toBeLessThan(Number(s.get('TimeoutStopSec')) * 1000);
    await untilValue(
      async () => tree.filter(alive),
      (left) => left.length === 0,
      5000,
      'workers gone',
    );
    const complete = output.split('\n').filter((l) => l.includes('"shutdown complete"'));
    expect(complete.length).toBeGreaterThanOrEqual(2);
    expect(complete.slice(-2).map((l) => JSON.parse(l.slice(l.indexOf('{'))).code)).toEqual([0, 0]);
  });
});
