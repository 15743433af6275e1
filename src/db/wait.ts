/** Boot-time database preparation: wait (capped backoff, never a crash), then migrate. */
import type { Readiness } from '../lifecycle/readiness';
import type { Logger } from '../logger';
import { classify, describe } from './errors';
import type { HostState } from './hosts';

export interface PrepareDeps {
  ping: () => Promise<boolean>;
  migrate: () => Promise<unknown>;
  readiness: Readiness;
  log: Logger;
  stopped: () => boolean;
  /** What each host of the URL is (./hosts probeHosts), logged while the wait lasts. */
  hosts?: () => Promise<HostState[]>;
}

const HOST_LINES: Record<HostState['role'], string> = {
  primary: 'database host is the primary',
  standby: 'database host is a standby, waiting for a primary',
  'read-only':
    'database host is read-only (default_transaction_read_only), waiting for a writable primary',
  unreachable: 'database host not reachable',
};

/**
 * Resolves once the schema is current; retries for as long as no primary answers.
 * Rejects only for a migration that fails for a reason other than connectivity.
 */
export async function prepareDatabase(deps: PrepareDeps): Promise<void> {
  for (let n = 0; !deps.stopped(); n++) {
    if (await deps.ping()) {
      try {
        await deps.migrate();
        deps.readiness.markMigrated();
        return;
      } catch (err) {
        // A migration that ran out of its lock-wait budget is tried again later, never a crash
        // (a restarted worker would only queue behind the same blocker): the worker serves
        // not-ready meanwhile, /readyz 503, and the migration's own lines name the blocker.
        if (isLockBudget(err)) {
          deps.log.warn('schema not current: a migration waits for locks, not ready yet', {
            error: (err as Error).message,
          });
          n = Math.max(n, 4);
        } else if (classify(err) !== 'connection') throw err;
        else if (n % 5 === 0) deps.log.warn('migration waits for the database', describe(err));
      }
    }
    // 100 ms doubling, capped at 2 s: a database that starts a second later is used a second later.
    const delay = Math.min(2000, 100 * 2 ** n);
    // The first miss and every fifth: say what each host is (a standby is no outage), bounded
    // at one short connection per host per ~10 s.
    if (n % 5 === 0) await logHosts(deps);
    if (n > 0 && n % 5 === 0) deps.log.warn('waiting for the database', { attempt: n });
    await new Promise((r) => setTimeout(r, delay).unref());
  }
}

async function logHosts(deps: PrepareDeps): Promise<void> {
  const hosts = await deps.hosts?.().catch(() => []);
  for (const h of hosts ?? []) {
    const fields = { host: h.address, role: h.role, ...(h.error ? { code: h.error } : {}) };
    if (h.role === 'primary') deps.log.info(HOST_LINES[h.role], fields);
    else deps.log.warn(HOST_LINES[h.role], fields);
  }
}

function isLockBudget(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'KEEL_MIGRATION_LOCK_BUDGET';
}
