/**
 * The container engine through its own CLI (`docker`, `docker-compose`), for the tests of
 * deploy/docker/: the image is built with the repo's Dockerfile, and containers, networks and
 * compose projects are named with KEEL_TEST_SESSION and labelled keel.test.session, so a run
 * (and .ci/run's check for leftovers) finds what it started.
 *
 * Whether these tests run follows the Postgres fixture (test/support/pg-container.ts):
 * KEEL_TEST_CONTAINERS=off skips them; `auto` skips them with one line when no engine answers;
 * `only` (CI with an engine) runs them, and a missing engine fails them.
 */
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { getFresh } from './http';
import { containerMode } from './pg-container';
import { pidExists } from './procfs';

const execFileAsync = promisify(execFile);
export const ROOT = path.resolve(__dirname, '..', '..');
export const SESSION = process.env.KEEL_TEST_SESSION || 'keel-test';
/** The image the tests build and keep (labelled, so it can be found and removed). */
export const KEEL_TEST_IMAGE = 'keel-test/keel:latest';
export const KEPT_LABEL = 'keel.test.kept=deploy-docker';
// The classic builder: the engines here have no BuildKit; the Dockerfile needs nothing of it.
const ENV = { ...process.env, DOCKER_BUILDKIT: '0', COMPOSE_DOCKER_CLI_BUILD: '0' };

/** Why these tests cannot run here (undefined: they can). Throws under KEEL_TEST_CONTAINERS=only. */
export function engineUnavailable(): string | undefined {
  if (containerMode() === 'off') return 'KEEL_TEST_CONTAINERS=off';
  const probe = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], {
    env: ENV,
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (probe.status === 0) return undefined;
  const why = probe.error
    ? `no docker CLI (${probe.error.message})`
    : `no container engine answers (${(probe.stderr || '').trim().split('\n')[0]})`;
  if (containerMode() === 'only') throw new Error(`KEEL_TEST_CONTAINERS=only, but ${why}`);
  return why;
}

/** `describe`, or `describe.skip` with one line saying why (no engine, containers off). */
export function describeWithEngine(name: string, fn: () => void): void {
  const why = engineUnavailable();
  if (why) {
    process.stderr.write(`keel test docker: skipping "${name}": ${why}\n`);
    describe.skip(name, fn);
  } else {
    describe(name, fn);
  }
}

export async function docker(
  args: string[],
  timeoutMs = 60_000,
): Promise<{ stdout: string; stderr: string }> {
  return execFileAsync('docker', args, {
    env: ENV,
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
}

/** `docker-compose` (v1.29, Debian's) with a project name and files. */
export async function compose(
  project: string,
  files: string[],
  args: string[],
  env: Record<string, string>,
  timeoutMs = 300_000,
): Promise<{ stdout: string; stderr: string }> {
  const fileArgs = files.flatMap((f) => ['-f', f]);
  return execFileAsync(
    'docker-compose',
    ['--project-directory', path.dirname(files[0]!), '-p', project, ...fileArgs, ...args],
    { env: { ...ENV, ...env }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
  );
}

export async function imageExists(ref: string): Promise<boolean> {
  return docker(['image', 'inspect', ref]).then(
    () => true,
    () => false,
  );
}

/** A local stand-in (.ci/stand-ins/build) when the engine has it, else the official image. */
export async function standInOr(official: string, standIn: string): Promise<string> {
  return (await imageExists(standIn)) ? standIn : official;
}

/** The Node base of the Dockerfile: KEEL_TEST_NODE_IMAGE, the stand-in, or the official one. */
export async function nodeBase(): Promise<string> {
  return (
    process.env.KEEL_TEST_NODE_IMAGE ||
    standInOr('node:24-bookworm-slim', 'keel-standin/node:24-bookworm-slim')
  );
}

/**
 * Builds deploy/docker/Dockerfile from the repo's files into KEEL_TEST_IMAGE (kept between runs:
 * the layer cache makes a rebuild with unchanged package*.json and patches/ take seconds).
 */
export async function buildKeelImage(): Promise<{ image: string; ms: number; base: string }> {
  const base = await nodeBase();
  const t0 = Date.now();
  // One build at a time per session: the deploy files run side by side in CI, and two classic
  // builds of the same Dockerfile would both do the work; the second finds the first's layers.
  const release = await buildLock();
  try {
    await buildImage(base);
  } finally {
    release();
  }
  return { image: KEEL_TEST_IMAGE, ms: Date.now() - t0, base };
}

/** A lock directory in the temp dir, named for the session; a holder that died is taken over. */
async function buildLock(): Promise<() => void> {
  const dir = path.join(os.tmpdir(), `${SESSION}-keel-image-build.lock`);
  const owner = path.join(dir, 'pid');
  const until = Date.now() + 900_000;
  for (;;) {
    try {
      fs.mkdirSync(dir);
      fs.writeFileSync(owner, String(process.pid));
      return () => fs.rmSync(dir, { recursive: true, force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder = 0;
    try {
      holder = Number(fs.readFileSync(owner, 'utf8')) || 0;
    } catch {
      // Released meanwhile, or its holder has not written its pid yet.
    }
    if (holder && !pidExists(holder)) fs.rmSync(dir, { recursive: true, force: true });
    if (Date.now() > until) throw new Error(`the image build lock ${dir} was held for 15 min`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function buildImage(base: string): Promise<void> {
  await docker(
    [
      'build',
      '-q',
      '--force-rm',
      '-f',
      'deploy/docker/Dockerfile',
      '--build-arg',
      `NODE_IMAGE=${base}`,
      '--label',
      KEPT_LABEL,
      '-t',
      KEEL_TEST_IMAGE,
      ROOT,
    ],
    900_000,
  ).catch((e: Error & { stderr?: string }) => {
    throw new Error(`docker build failed: ${(e.stderr ?? e.message).slice(-2000)}`);
  });
  // The image this tag held before (if the build changed it) is left untagged: remove it.
  await docker(['image', 'prune', '-f', '--filter', `label=${KEPT_LABEL}`]).catch(() => undefined);
}

let counter = 0;
/** A name for a container or network of this test file: session, pid, a counter. */
export function uniqueName(kind: string): string {
  return `${SESSION}-${kind}-${process.pid}-${++counter}-${Date.now().toString(36)}`;
}

export const LABEL_ARGS = ['--label', `keel.test.session=${SESSION}`];

/** Removes containers (with their volumes) and networks; ignores ones already gone. */
export async function removeAll(containers: string[], networks: string[] = []): Promise<void> {
  if (containers.length) await docker(['rm', '-f', '-v', ...containers]).catch(() => undefined);
  for (const n of networks) await docker(['network', 'rm', n]).catch(() => undefined);
}

export async function inspect(name: string, format: string): Promise<string> {
  return (await docker(['inspect', '-f', format, name])).stdout.trim();
}

/** The host port (on 127.0.0.1) published for a container port. */
export async function hostPort(name: string, containerPort: number): Promise<number> {
  const out = (await docker(['port', name, `${containerPort}/tcp`])).stdout.trim();
  const port = Number(/:(\d+)\s*$/m.exec(out)?.[1]);
  if (!port) throw new Error(`no published port for ${name}:${containerPort} (${out})`);
  return port;
}

export async function logs(name: string): Promise<string> {
  const { stdout, stderr } = await docker(['logs', name]);
  return stdout + stderr;
}

/** Polls `check` until it returns a value (not undefined) or `timeoutMs` passes. */
export async function poll<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 250,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) {
      throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${String(last)})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * GET on a connection of its own, closed after the answer: a pooled keep-alive socket (global
 * fetch keeps one) would sit idle in the server and hold its drain at a later stop.
 */
export function get(url: string): Promise<{ status: number; body: string }> {
  return getFresh(url, 3000);
}

/** The status of a GET (undefined on a connection error). */
export async function statusOf(url: string): Promise<number | undefined> {
  return get(url).then(
    (r) => r.status,
    () => undefined,
  );
}
