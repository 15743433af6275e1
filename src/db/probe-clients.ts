/**
 * Short-lived single-connection clients, all closed together: `keel diagnose` (Ctrl-C or the
 * end of the run closes every one) and a booting worker's look at the connection budget. No
 * idle or lifetime timer: these connections are held on purpose, and never pooled.
 */
import postgres from 'postgres';
import type { DbConfig } from '../config/config';

export type Sql = postgres.Sql;
export type ClientOptions = postgres.Options<Record<string, never>>;

/** Their application_name: the budget's "held by others" leaves them out. */
export const PROBE_APPLICATION_NAME = 'keel-diagnose';

export interface Clients {
  /** A client the registry will close; options override the defaults. */
  open(url: string, options?: ClientOptions): Sql;
  /** Closes every client opened so far (and any opened later, at once). */
  closeAll(): Promise<void>;
  readonly opened: number;
}

export function createClients(db: Pick<DbConfig, 'ssl' | 'connectTimeoutS'>): Clients {
  const live = new Set<Sql>();
  let closed = false;
  let opened = 0;
  const end = (sql: Sql) => sql.end({ timeout: 1 }).catch(() => undefined);
  return {
    open(url, options = {}) {
      const sql = postgres(url, {
        max: 1,
        ssl: db.ssl,
        connect_timeout: db.connectTimeoutS,
        idle_timeout: 0,
        max_lifetime: 0,
        fetch_types: false,
        onnotice: () => undefined,
        ...options,
        connection: { application_name: PROBE_APPLICATION_NAME, ...options.connection },
      } as ClientOptions);
      opened += 1;
      live.add(sql);
      if (closed) void end(sql);
      return sql;
    },
    async closeAll() {
      closed = true;
      await Promise.all([...live].map(end));
      live.clear();
    },
    get opened() {
      return opened;
    },
  };
}
