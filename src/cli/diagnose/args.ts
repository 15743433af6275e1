/** Command line of `keel diagnose`; the database settings come from the environment, as for the workers. */
import { parseArgs } from 'node:util';

export interface DiagnoseArgs {
  json: boolean;
  idleProbe: boolean;
  /** Longest idle time the probe tries (--max, seconds). */
  maxMs: number;
  /** Connections per probe round (--connections). */
  connections: number;
  /** Round trips per latency figure (--round-trips). */
  roundTrips: number;
  /** How long a probe's `select 1` may take before the connection counts as silent. */
  probeTimeoutMs: number;
  help: boolean;
}

export class UsageError extends Error {
  readonly exitCode = 64; // EX_USAGE
}

export const USAGE = `usage: keel diagnose [--json] [--idle-probe [--max S] [--connections K]] [--round-trips N] [--probe-timeout S]

Checks the path to the database, its latency, the server's settings, a pooler in between, the
connection budget and Keel's own settings, from the same environment the workers read.
  --json             the report as JSON on stdout (progress stays on stderr)
  --idle-probe       also measure the platform's idle cutoff (takes about --max seconds)
  --max S            longest idle time to try (default 900)
  --connections K    connections per probe round (default 8)
  --round-trips N    select 1 round trips per latency figure (default 100)
  --probe-timeout S  a probe unanswered this long counts as a silent drop (default 5)
Exit: 0 all ok, 1 a warning, 2 a failure, 64 bad arguments, 78 bad configuration.
`;

function int(
  name: string,
  v: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (v === undefined) return fallback;
  if (!/^\d+(\.\d+)?$/.test(v) || Number(v) < min || Number(v) > max)
    throw new UsageError(
      `--${name} must be a number from ${min} to ${max}, not ${JSON.stringify(v)}`,
    );
  return Number(v);
}

export function parseDiagnoseArgs(argv: string[]): DiagnoseArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: 'boolean' },
        'idle-probe': { type: 'boolean' },
        max: { type: 'string' },
        connections: { type: 'string' },
        'round-trips': { type: 'string' },
        'probe-timeout': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const { values, positionals } = parsed;
  // `npx keel diagnose ...`: the bin is `keel`, the command its first word.
  const extra = positionals.filter((p, i) => !(i === 0 && p === 'diagnose'));
  if (extra.length) throw new UsageError(`unknown command or argument: ${extra.join(' ')}`);
  return {
    json: values.json === true,
    idleProbe: values['idle-probe'] === true,
    maxMs: int('max', values.max, 900, 1, 86400) * 1000,
    connections: int('connections', values.connections, 8, 1, 64),
    roundTrips: int('round-trips', values['round-trips'], 100, 1, 100000),
    probeTimeoutMs: int('probe-timeout', values['probe-timeout'], 5, 0.1, 600) * 1000,
    help: values.help === true,
  };
}
