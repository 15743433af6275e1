/**
 * The container path of the test Postgres fixture (test/support/postgres.ts).
 *
 * Settings (test-only environment, read here and nowhere in src/):
 *  - KEEL_TEST_CONTAINERS: `auto` (default: a container when an engine answers and the image can
 *    be had, otherwise a local cluster), `only` (no silent fallback: a missing engine or an image
 *    that cannot be pulled fails the test with what to do), `off` (never; the older
 *    KEEL_TEST_NO_CONTAINERS=1 means the same).
 *  - KEEL_TEST_PG_IMAGE: the image (default the official `postgres:17-alpine`); CI points it at
 *    the local stand-in that .ci/stand-ins/build makes.
 *  - KEEL_TEST_SESSION: name prefix and `keel.test.session` label of every container started
 *    (default `keel-test`), so a run can find and remove what it started.
 *  - KEEL_TEST_PATH_LOG: a file that gets one line per fixture start: test file, path, detail.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PostgreSqlContainer } from '@testcontainers/postgresql';
import { getContainerRuntimeClient, ImageName, type ContainerRuntimeClient } from 'testcontainers';
import { ROOT } from './paths';

export const DEFAULT_PG_IMAGE = 'postgres:17-alpine';

export type ContainerMode = 'auto' | 'only' | 'off';

export function containerMode(): ContainerMode {
  if (process.env.KEEL_TEST_NO_CONTAINERS === '1') return 'off';
  const mode = process.env.KEEL_TEST_CONTAINERS ?? 'auto';
  if (mode === 'auto' || mode === 'only' || mode === 'off') return mode;
  throw new Error(`KEEL_TEST_CONTAINERS must be auto, only or off (got "${mode}")`);
}

export function pgImage(): string {
  return process.env.KEEL_TEST_PG_IMAGE || DEFAULT_PG_IMAGE;
}

/** The engine's client, or undefined when none answers within 3 s. */
export async function probeEngine(): Promise<ContainerRuntimeClient | undefined> {
  try {
    return await Promise.race([
      getContainerRuntimeClient(),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('probe timeout')), 3000).unref(),
      ),
    ]);
  } catch {
    return undefined;
  }
}

/**
 * Makes sure the image is on the engine (pulling it if needed). Resolves to undefined when it
 * is, or to one line that says why not and what to do.
 */
export async function ensureImage(
  client: ContainerRuntimeClient,
  image: string,
): Promise<string | undefined> {
  const name = ImageName.fromString(image);
  if (await client.image.exists(name)) return undefined;
  try {
    await client.image.pull(name);
    return undefined;
  } catch (e) {
    const why = String((e as Error).message ?? e)
      .split('\n')[0]
      ?.trim();
    return (
      `the engine cannot pull ${image} (${why}); build the local stand-in with ` +
      '`bash .ci/stand-ins/build postgres` and set KEEL_TEST_PG_IMAGE=keel-standin/postgres:17, ' +
      'or set KEEL_TEST_CONTAINERS=off for local clusters'
    );
  }
}

export interface StartedPg {
  host: string;
  port: number;
  name: string;
  stop(): Promise<void>;
}

let counter = 0;

const CRASH =
  /terminated by signal|was terminated|PANIC|out of memory|all server processes terminated/;

export async function startPgContainer(opts: {
  image: string;
  user: string;
  password: string;
  settings: Record<string, string | number>;
}): Promise<StartedPg> {
  const session = process.env.KEEL_TEST_SESSION || 'keel-test';
  const name = `${session}-pg-${process.pid}-${++counter}-${Date.now().toString(36)}`;
  const args = Object.entries(opts.settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
  let container;
  try {
    container = await new PostgreSqlContainer(opts.image)
      .withName(name)
      .withLabels({ 'keel.test.session': session })
      .withUsername(opts.user)
      .withPassword(opts.password)
      .withDatabase('postgres')
      .withCommand(['postgres', ...args])
      // The engine's default /dev/shm is 64 MB; a server shared by a whole parallel run keeps
      // its dynamic shared memory there.
      .withSharedMemorySize(256 * 1024 * 1024)
      // Below jest's 120 s hook limit, so a wait that fails is reported (and the container
      // removed by testcontainers) rather than cut short by jest.
      .withStartupTimeout(60_000)
      .start();
  } catch (e) {
    const msg = String((e as Error).message ?? e);
    const host = (await getContainerRuntimeClient()).info.containerRuntime.host;
    if (/not bound|timed out|timeout/i.test(msg) && !/^(127\.|localhost$|::1$)/.test(host)) {
      throw new Error(
        `${msg.split('\n')[0]}: testcontainers reached for the container's port at ${host}; ` +
          'if the engine runs on this machine, set TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1',
      );
    }
    if (/ryuk/i.test(msg) && process.env.TESTCONTAINERS_RYUK_DISABLED !== 'true') {
      throw new Error(
        `testcontainers could not start its Ryuk reaper (${msg.split('\n')[0]}); set ` +
          'TESTCONTAINERS_RYUK_DISABLED=true (the fixture stops its own containers)',
      );
    }
    throw e;
  }
  return {
    host: container.getHost(),
    port: container.getPort(),
    name,
    // remove: the container and its anonymous volumes go, whether Ryuk runs or not.
    stop: async () => {
      // A backend that died while the server ran (every session then gets "the database system
      // is in recovery mode"): its lines reach the run's output before the container goes.
      const logs = await container
        .logs()
        .then(
          (stream) =>
            new Promise<string>((resolve) => {
              let text = '';
              // The stream follows the running container: read what is there, then let go.
              const done = () => {
                stream.destroy();
                resolve(text);
              };
              stream.on('data', (c: Buffer | string) => (text += c.toString()));
              stream.on('end', done);
              stream.on('error', done);
              setTimeout(done, 1000);
            }),
        )
        .catch(() => '');
      const lines = logs.split('\n');
      const crashes = lines.filter((l) => CRASH.test(l));
      // With each crash, what the dead process was (log_connections: its user, database and
      // application_name), to tell which test's session it was.
      const dead = crashes.flatMap((l) => /PID (\d+)/.exec(l)?.[1] ?? []);
      const about = lines.filter((l) => dead.some((pid) => l.includes(`[${pid}]`)));
      if (crashes.length)
        process.stderr.write(`postgres container ${name}:\n${[...about, ...crashes].join('\n')}\n`);
      await container.stop({ remove: true, removeVolumes: true });
    },
  };
}

/** Appends `test file, path, detail` to KEEL_TEST_PATH_LOG (CI prints it). */
export function recordPath(kind: 'container' | 'local', detail: string): void {
  const log = process.env.KEEL_TEST_PATH_LOG;
  if (!log) return;
  const state = (globalThis as { expect?: { getState(): { testPath?: string } } }).expect;
  const testPath = state?.getState().testPath;
  const file = testPath ? path.relative(ROOT, testPath) : '(the run: globalSetup)';
  fs.appendFileSync(log, `${file}\t${kind}\t${detail}\n`);
}

/** One warning line on stderr (not console.warn: jest would add a stack and a frame). */
export function warnOnce(line: string): void {
  process.stderr.write(`keel test postgres: ${line}\n`);
}
