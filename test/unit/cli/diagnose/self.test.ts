import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cgroupCpus, checkSelf, satisfies, type SelfDeps } from '../../../../src/cli/diagnose/self';
import { loadConfig } from '../../../../src/config/config';
import { ROOT } from '../../../support/paths';
const URL = 'postgres://keel:pw@db.internal:5432/keel';

/** The real project files, with some paths answered differently. */
function deps(files: Record<string, string | null> = {}, over: Partial<SelfDeps> = {}): SelfDeps {
  const fs = jest.requireActual<typeof import('node:fs/promises')>('node:fs/promises');
  return {
    root: ROOT,
    readFile: async (f) => {
      if (f in files) {
        const v = files[f];
        if (v === null) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
        return v!;
      }
      if (f.startsWith('/sys/')) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      return fs.readFile(f, 'utf8');
    },
    nodeVersion: '20.19.0',
    cpus: 8,
    killTimeoutMs: 15000,
    ...over,
  };
}
const byId = async (env: Record<string, string>, d: SelfDeps, id: string) =>
  (await checkSelf(loadConfig({ DATABASE_URL: URL, ...env }), d)).find((c) => c.id === id)!;

test('the driver patch is found applied in this checkout, and missing lines are named', async () => {
  expect((await byId({}, deps(), 'keel.driver_patch')).status).toBe('ok');
  // A checkout whose driver lacks the patch in one file: the worker's own check finds it.
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-self-'));
  try {
    fs.cpSync(path.join(ROOT, 'patches'), path.join(root, 'patches'), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(root, 'package.json'));
    const driver = path.join(root, 'node_modules', 'postgres');
    fs.cpSync(fs.realpathSync(path.join(ROOT, 'node_modules', 'postgres')), driver, {
      recursive: true,
    });
    fs.writeFileSync(path.join(driver, 'cjs/src/connection.js'), 'unpatched');
    const c = await byId({}, deps({}, { root }), 'keel.driver_patch');
    expect(c.status).toBe('fail');
    expect(c.summary).toBe(
      'patches/postgres+3.4.9.patch is not applied to node_modules/postgres/cjs/src/connection.js',
    );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('timeouts: Railway draining below kill_timeout fails; a drain shorter than a request warns', async () => {
  const railway = await byId(
    { RAILWAY_ENVIRONMENT: 'production', RAILWAY_DEPLOYMENT_DRAINING_SECONDS: '5' },
    deps(),
    'keel.timeouts',
  );
  expect(railway.status).toBe('fail');
  expect(railway.summary).toMatch(
    /RAILWAY_DEPLOYMENT_DRAINING_SECONDS=5 is below kill_timeout 15 s/,
  );
  const short = await byId({ SHUTDOWN_TIMEOUT_MS: '3000' }, deps(), 'keel.timeouts');
  expect(short.status).toBe('warn');
  expect(
    (
      await byId(
        { RAILWAY_ENVIRONMENT: 'production', RAILWAY_DEPLOYMENT_DRAINING_SECONDS: '15' },
        deps(),
        'keel.timeouts',
      )
    ).status,
  ).toBe('ok');
});

test('WEB_CONCURRENCY is held against the cgroup quota, not the host CPU count', async () => {
  const quota = deps({ '/sys/fs/cgroup/cpu.max': '100000 100000\n' });
  const c = await byId({ WEB_CONCURRENCY: '4' }, quota, 'keel.cpus');
  expect(c).toMatchObject({ status: 'warn', fix: 'set WEB_CONCURRENCY=1' });
  expect(c.summary).toMatch(/a cgroup quota of 1 CPUs \(the host shows 8\)/);
  expect((await byId({ WEB_CONCURRENCY: '4' }, deps(), 'keel.cpus')).status).toBe('ok');
});

test('Node is held against the engines range of package.json', async () => {
  expect((await byId({}, deps({}, { nodeVersion: '18.20.0' }), 'keel.node')).status).toBe('fail');
  expect(satisfies('22.22.1', '^22.22.0 || >=24.0.0')).toBe(true);
  expect(satisfies('22.21.0', '^22.22.0 || >=24.0.0')).toBe(false);
  expect(satisfies('23.1.0', '^22.22.0 || >=24.0.0')).toBe(false);
  expect(satisfies('24.0.0', '^22.22.0 || >=24.0.0')).toBe(true);
  expect(satisfies('20.19.0', '>=20.19')).toBe(true);
  expect(satisfies('20.18.9', '>=20.19')).toBe(false);
});

test('cgroup CPU quota: v2 cpu.max, v1 cfs files, none', () => {
  expect(cgroupCpus('150000 100000\n', null, null)).toBe(1.5);
  expect(cgroupCpus('max 100000\n', null, null)).toBeNull();
  expect(cgroupCpus(null, '50000\n', '100000\n')).toBe(0.5);
  expect(cgroupCpus(null, '-1\n', '100000\n')).toBeNull();
});
