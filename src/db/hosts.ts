/**
 * Which of the URL's hosts new connections go to. One host at a time (sticky), so a cancel
 * request reaches the server of the query it cancels; the next host is tried when a
 * connection to the current one fails, or turns out not to be the primary (postgres.js ends a
 * standby's session under target_session_attrs=read-write; a query answered 25006).
 */

export interface HostPicker {
  /** Index and address for the next connection. */
  pick(): { index: number; host: string; port: number };
  /** A connection to host `index` failed or found a standby: move on if it is still current. */
  failed(index: number): void;
  current(): { host: string; port: number };
}

export function createHostPicker(hosts: ReadonlyArray<{ host: string; port: number }>): HostPicker {
  if (hosts.length === 0) throw new Error('no database host');
  let index = 0;
  const at = (i: number) => hosts[i % hosts.length]!;
  return {
    pick: () => ({ index, ...at(index) }),
    failed(i) {
      if (i === index && hosts.length > 1) index = (index + 1) % hosts.length;
    },
    current: () => at(index),
  };
}
