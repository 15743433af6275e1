/** The idle probe's result as report lines, ending with the DB_IDLE_CUTOFF_S to set. */
import type { Config } from '../../config/config';
import type { IdleProbeResult, KeepaliveResult } from './idle-types';
import { check, type Check } from './report';

const sec = (ms: number) => (ms / 1000).toFixed(ms < 10000 ? 2 : 0);

const DEATHS: Record<string, string> = {
  fin: 'closed with a FIN while idle',
  rst: 'reset (RST) while idle',
  'rst-on-write': 'silently forgotten: the next write got a reset',
  silence: 'silently dropped: the next query got no answer at all (only a timeout finds it)',
  'server-timeout': "closed by the server's own idle_session_timeout (FATAL 57P05), not by a proxy",
  'server-closed': 'ended by the server with a FATAL error',
};

export function idleChecks(r: IdleProbeResult, config: Config): Check[] {
  const current = config.db.idleCutoffS;
  if (r.cutoffMs === null || !r.bracketMs) {
    return [
      check(
        'idle.cutoff',
        'ok',
        null,
        's',
        `no idle connection was cut within --max ${sec(r.maxMs)} s`,
        current * 1000 > r.maxMs
          ? `rerun with --max ${current + 60} to cover DB_IDLE_CUTOFF_S=${current}`
          : null,
        { ...r, samples: undefined },
      ),
    ];
  }
  const [lo, hi] = r.bracketMs;
  const rec = r.recommendedIdleCutoffS!;
  const data = {
    cutoffMs: r.cutoffMs,
    bracketMs: r.bracketMs,
    death: r.death,
    recommendedIdleCutoffS: rec,
  };
  const what = `idle connections are cut after ${sec(lo)}..${sec(hi)} s (${r.rounds} rounds of ${r.connectionsPerRound}): ${DEATHS[r.death ?? ''] ?? 'closed'}`;
  const checks: Check[] = [];
  if (r.serverSide) {
    checks.push(
      check(
        'idle.cutoff',
        'fail',
        r.cutoffMs / 1000,
        's',
        what,
        `ALTER ROLE ... SET idle_session_timeout = 0 (or set DB_IDLE_CUTOFF_S=${rec})`,
        data,
      ),
    );
  } else if (current > rec) {
    checks.push(
      check(
        'idle.cutoff',
        'fail',
        r.cutoffMs / 1000,
        's',
        `${what}; DB_IDLE_CUTOFF_S=${current} is above it`,
        `set DB_IDLE_CUTOFF_S=${rec}`,
        data,
      ),
    );
  } else {
    checks.push(
      check(
        'idle.cutoff',
        'ok',
        r.cutoffMs / 1000,
        's',
        `${what}; DB_IDLE_CUTOFF_S=${current} is within it`,
        `DB_IDLE_CUTOFF_S=${rec} is the most this path allows`,
        data,
      ),
    );
  }
  if (r.keepalive) checks.push(keepaliveCheck(r.keepalive, lo));
  return checks;
}

function keepaliveCheck(ka: KeepaliveResult, survivedMs: number): Check {
  const data = { ...ka };
  if (ka.survived)
    return check(
      'idle.keepalive',
      'ok',
      ka.keepAliveS,
      's',
      `with TCP keepalive every ${ka.keepAliveS} s a connection survived ${sec(ka.idleMs)} s idle, past the cutoff: the path counts keepalive as activity`,
      null,
      data,
    );
  // The first keepalive probe leaves after DB_KEEPALIVE_S of silence: at or past the cutoff it proves nothing.
  if (ka.keepAliveS * 1000 >= survivedMs)
    return check(
      'idle.keepalive',
      'warn',
      ka.keepAliveS,
      's',
      `inconclusive: DB_KEEPALIVE_S=${ka.keepAliveS} is not below the cutoff, so no keepalive probe left before the cut (${ka.death})`,
      `set DB_KEEPALIVE_S below ${Math.max(1, Math.floor(survivedMs / 2000))} and rerun to learn whether keepalive helps`,
      data,
    );
  return check(
    'idle.keepalive',
    'ok',
    ka.keepAliveS,
    's',
    `TCP keepalive every ${ka.keepAliveS} s does not keep a connection past the cutoff (${sec(ka.idleMs)} s idle: ${ka.death}): the proxy ignores keepalive (a userspace proxy never sees it), so Keel's idle timers (DB_IDLE_CUTOFF_S) must close connections first`,
    null,
    data,
  );
}
