#!/usr/bin/env node
/**
 * `npx keel diagnose` / `npm run diagnose`: why database connections die here, measured from
 * this deployment with the workers' own configuration. The composition root of the command:
 * it alone reads the environment, handles signals and prints.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, redactUrl, type Config } from '../config/config';
import { dbUrlParts } from '../config/db-url';
import { pm2Apps } from '../config/pm2-apps';
import { createClients } from '../db/probe-clients';
import { scrub, secretForms } from '../logger';
import { parseDiagnoseArgs, USAGE, UsageError } from './diagnose/args';
import { buildReport, renderHuman } from './diagnose/report';
import { runDiagnose } from './diagnose/run';
import { reportSchema } from './diagnose/schema';

export interface DiagnoseIo {
  stdout: Pick<NodeJS.WriteStream, 'write'>;
  stderr: Pick<NodeJS.WriteStream, 'write'>;
  /** Where SIGINT / SIGTERM are heard (production: `process`). */
  proc?: Pick<NodeJS.Process, 'once' | 'off'>;
  /** PM2's kill_timeout for `web` as ecosystem.config.js computes it from this environment. */
  killTimeoutMs?: () => number | null;
}

const ROOT = path.resolve(__dirname, '..', '..');
export const INTERRUPTED = 130;

/** The passwords that must never be printed, in every form (URLs parsed as the workers parse them). */
function secretsOf(config: Config, env: NodeJS.ProcessEnv): string[] {
  const urls = [config.db.url, config.db.migrationUrl, config.db.poolerAdminUrl];
  const fromUrls = urls.flatMap((u) => (u ? [dbUrlParts(u).password] : []));
  return secretForms([...fromUrls, env.KEEL_DB_PASSWORD ?? ''].filter((p) => p.length > 0));
}

/** PM2's kill_timeout for `web`, as the ecosystem file computes it (null: its variables are bad). */
function ecosystemKillTimeout(env: NodeJS.ProcessEnv): number | null {
  try {
    return pm2Apps(env, ROOT).apps.find((a) => a.name === 'web')?.kill_timeout ?? null;
  } catch {
    return null;
  }
}

export async function main(
  argv: string[],
  env: NodeJS.ProcessEnv,
  io: DiagnoseIo,
): Promise<number> {
  let args;
  try {
    args = parseDiagnoseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`keel diagnose: ${err.message}\n${USAGE}`);
    return err.exitCode;
  }
  if (args.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.stderr.write(`keel diagnose: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
  const secrets = secretsOf(config, env);
  const progress = (line: string) => io.stderr.write(scrub(`${line}\n`, secrets));
  const clients = createClients(config.db);
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    progress(`diagnose: ${signal}, closing ${clients.opened} connection(s)`);
    abort.abort(new Error(signal));
    // Ending the clients now also settles a connect or query in flight.
    void clients.closeAll();
  };
  io.proc?.once('SIGINT', onSignal);
  io.proc?.once('SIGTERM', onSignal);
  const startedAt = new Date();
  const t0 = performance.now();
  try {
    const pkg = JSON.parse(await fs.readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    const { checks, idleProbe } = await runDiagnose({
      config,
      args,
      clients,
      signal: abort.signal,
      progress,
      self: {
        root: ROOT,
        readFile: (f) => fs.readFile(f, 'utf8'),
        nodeVersion: process.versions.node,
        cpus: os.availableParallelism(),
        killTimeoutMs: io.killTimeoutMs?.() ?? null,
      },
    });
    if (abort.signal.aborted) return INTERRUPTED;
    const report = buildReport(
      {
        keelVersion: pkg.version,
        startedAt: startedAt.toISOString(),
        durationMs: Math.round(performance.now() - t0),
        target: {
          url: redactUrl(config.db.url),
          migrationUrl: redactUrl(config.db.migrationUrl),
          embedded: config.db.embedded,
        },
      },
      checks,
      idleProbe,
    );
    // --json promises the documented shape: the schema is checked before anything is printed.
    const text = args.json
      ? `${JSON.stringify(reportSchema.parse(report), null, 2)}\n`
      : renderHuman(report);
    io.stdout.write(scrub(text, secrets));
    return report.exitCode;
  } catch (err) {
    if (abort.signal.aborted) return INTERRUPTED;
    progress(`keel diagnose: ${err instanceof Error ? err.message : String(err)}`);
    return 2;
  } finally {
    io.proc?.off('SIGINT', onSignal);
    io.proc?.off('SIGTERM', onSignal);
    await clients.closeAll();
  }
}

if (require.main === module) {
  // `keel diagnose | head`: a reader that went away is not an error of ours.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exitCode ??= 0;
    else throw err;
  });
  main(process.argv.slice(2), process.env, {
    stdout: process.stdout,
    stderr: process.stderr,
    proc: process,
    killTimeoutMs: () => ecosystemKillTimeout(process.env),
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`keel diagnose: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 2;
    },
  );
}
