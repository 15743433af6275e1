/** Fault injectors that act on the real server: backend terminations and restarts. */
import postgres from 'postgres';
import { sleep } from './wait';

/** Runs `step` on its own admin connection every `everyMs` until `stop()`. */
function adminLoop(
  adminUrl: string,
  name: string,
  everyMs: number,
  step: (sql: postgres.Sql) => Promise<void>,
): { stop(): Promise<void> } {
  const sql = postgres(adminUrl, {
    max: 1,
    onnotice: () => undefined,
    connection: { application_name: name },
  });
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        await step(sql);
      } catch {
        // the admin connection itself may be hit by a restart; try again next round
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await sql.end({ timeout: 1 });
    },
  };
}

/** Terminates every Keel backend (application_name keel:*) every `everyMs` until stopped. */
export function terminateLoop(adminUrl: string, everyMs: number): { stop(): Promise<number> } {
  let killed = 0;
  const loop = adminLoop(adminUrl, 'test-admin', everyMs, async (sql) => {
    const rows = await sql`
      select pg_terminate_backend(pid) as ok from pg_stat_activity
      where application_name like 'keel:%' and pid <> pg_backend_pid()`;
    killed += rows.filter((r) => r.ok).length;
  });
  return { stop: () => loop.stop().then(() => killed) };
}

/** Samples the number of server connections held by Keel workers (max seen). */
export function connectionSampler(adminUrl: string, everyMs = 100): { stop(): Promise<number> } {
  let max = 0;
  const loop = adminLoop(adminUrl, 'test-sampler', everyMs, async (sql) => {
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity
      where application_name like 'keel:%' and application_name not like '%:migrate'`;
    max = Math.max(max, row?.n ?? 0);
  });
  return { stop: () => loop.stop().then(() => max) };
}

/** Scaled-down settings for fault tests: statement timeout 1 s, so a stalled connection goes after 2 s. */
export const FAULT_POOL = 5;
export const FAULT_ENV = {
  DB_POOL_MAX: String(FAULT_POOL),
  DB_STATEMENT_TIMEOUT_MS: '1000',
  DB_CONNECT_TIMEOUT_S: '2',
  REQUEST_TIMEOUT_MS: '8000',
  DB_RETRY_BUDGET_MS: '6000',
  LOG_LEVEL: 'info',
};

/** Stops the server (fast shutdown), keeps it down for `downMs`, starts it again. */
export async function restartFor(
  pg: { stop(mode: 'fast'): Promise<void>; start(): Promise<void> },
  downMs: number,
) {
  await pg.stop('fast');
  await sleep(downMs);
  await pg.start();
}
