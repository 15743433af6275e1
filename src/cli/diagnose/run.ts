/** Runs every check in order; a section that throws becomes one failure line, not a crash. */
import type { Config } from '../../config/config';
import type { DiagnoseArgs } from './args';
import { checkConnectionBudget } from './budget-check';
import type { Clients } from '../../db/probe-clients';
import { describeUrl, explainConnectError } from './connections';
import { runIdleProbe } from './idle-probe';
import { idleChecks } from './idle-report';
import type { IdleProbeResult } from './idle-types';
import { checkLatency } from './latency';
import { checkPath, checkSessionTls } from './path';
import { checkPooler, type PoolerFacts } from './pooler';
import { checkReadHosts } from './read-hosts';
import { checkReplication } from './replication';
import { check, type Check, type Section } from './report';
import { checkSelf, type SelfDeps } from './self';
import { checkServer, type ServerFacts } from './server';

export interface RunDeps {
  config: Config;
  args: DiagnoseArgs;
  clients: Clients;
  signal: AbortSignal;
  progress(line: string): void;
  self: SelfDeps;
}

export async function runDiagnose(
  deps: RunDeps,
): Promise<{ checks: Check[]; idleProbe: IdleProbeResult | null }> {
  const { config, clients, signal, args } = deps;
  const checks: Check[] = [];
  async function section<T>(name: Section, run: () => Promise<T>): Promise<T | null> {
    if (signal.aborted) throw signal.reason;
    try {
      return await run();
    } catch (err) {
      if (signal.aborted) throw err;
      const e = err as { code?: string; message?: string };
      checks.push(
        check(
          `${name}.error`,
          'fail',
          e.code ?? null,
          null,
          `the ${name} checks failed: ${String(e.message ?? err).slice(0, 200)}`,
          'see the message',
        ),
      );
      return null;
    }
  }

  deps.progress('diagnose: path');
  const path = await section('path', () => checkPath(config, clients));
  if (path) checks.push(...path.checks);
  // Each host's role and replication: also when the login failed only because no host was a
  // primary (a credentials failure would repeat itself once per host).
  const auth = path?.checks.find((c) => c.id === 'path.auth');
  if (path?.sql || (auth?.status === 'fail' && auth.value === 'other')) {
    deps.progress('diagnose: hosts and replication');
    await section('replication', async () => void checks.push(...(await checkReplication(config))));
  }
  // The standbys reads go to: each asked on its own, whatever the primary's path found.
  if (config.reads) {
    deps.progress('diagnose: read hosts');
    await section('replication', async () => void checks.push(...(await checkReadHosts(config))));
  }
  let pooler: PoolerFacts | null = null;
  let server: ServerFacts | null = null;
  if (path?.sql) {
    const sql = path.sql;
    pooler = await section('pooler', async () => {
      const r = await checkPooler(config, clients);
      checks.push(...r.checks);
      return r.facts;
    });
    // Behind PgBouncer pg_stat_ssl shows PgBouncer's own session, not ours.
    // Listed with the other path lines, right after them.
    if (pooler && !pooler.pgbouncer)
      await section('path', async () => {
        checks.splice(path.checks.length, 0, await checkSessionTls(sql, config));
      });
    deps.progress('diagnose: latency');
    await section(
      'latency',
      async () =>
        void checks.push(...(await checkLatency(config, clients, sql, args.roundTrips, signal))),
    );
    server = await section('server', async () => {
      const direct =
        config.db.migrationUrl === config.db.url ? sql : clients.open(config.db.migrationUrl);
      try {
        await direct`select 1`;
      } catch (err) {
        const f = explainConnectError(err, describeUrl(config.db.migrationUrl));
        checks.push(
          check(
            'server.connect',
            'fail',
            f.kind,
            null,
            `DATABASE_MIGRATION_URL: ${f.summary}`,
            f.fix,
          ),
        );
        return null;
      }
      const r = await checkServer(direct, config);
      checks.push(...r.checks);
      return r.facts;
    });
    if (server) checks.push(checkConnectionBudget(config, server, pooler));
  }
  await section('keel', async () => void checks.push(...(await checkSelf(config, deps.self))));

  let idleProbe: IdleProbeResult | null = null;
  if (args.idleProbe && path?.sql) {
    deps.progress(
      `diagnose: idle probe, up to ${args.maxMs / 1000} s with ${args.connections} connections per round`,
    );
    idleProbe = await section('idle', () =>
      runIdleProbe(config, clients, {
        maxMs: args.maxMs,
        connections: args.connections,
        probeTimeoutMs: args.probeTimeoutMs,
        signal,
        progress: deps.progress,
      }),
    );
    if (idleProbe) checks.push(...idleChecks(idleProbe, config));
  }
  return { checks, idleProbe };
}
