/** Boot-time database preparation: wait (capped backoff, never a crash), then migrate. */
import type { Readiness } from '../lifecycle/readiness';
import type { Logger } from '../logger';
import { classify } from './errors';

export interface PrepareDeps {
  ping: () => Promise<boolean>;
  migrate: () => Promise<unknown>;
  readiness: Readiness;
  log: Logger;
  stopped: () => boolean;
}

/**
 * Resolves once the schema is current; retries for as long as the database is unreachable.
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
        if (classify(err) !== 'connection') throw err;
      }
    }
    // 100 ms doubling, capped at 2 s: a database that starts a second later is used a second later.
    const delay = Math.min(2000, 100 * 2 ** n);
    if (n > 0 && n % 5 === 0) deps.log.warn('waiting for the database', { attempt: n });
    await new Promise((r) => setTimeout(r, delay).unref());
  }
}
