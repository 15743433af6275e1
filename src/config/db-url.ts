/**
 * Postgres URLs as libpq and postgres.js read them, which WHATWG `URL` alone cannot: a host
 * list (`postgres://u:p@h1:5432,h2:5432/db`) and percent-escapes that must decode. Used by the
 * config schema (a URL that would crash the driver is refused at start, exit 78) and by
 * everything that needs the hosts or the password.
 */

export interface DbUrlParts {
  hosts: ReadonlyArray<{ host: string; port: number }>;
  username: string;
  password: string;
  database: string;
  params: URLSearchParams;
}

/**
 * The target_session_attrs values Keel takes (docs/failover.md). `read-write` (the default with
 * several hosts): not in hot standby and not default_transaction_read_only; `primary`: not in
 * hot standby; `any`: the first host that answers (a write on a standby is then refused 25006
 * and retried on the next host).
 */
const SESSION_ATTRS = ['read-write', 'primary', 'any'] as const;
/** libpq's values that pick a standby: Keel writes on every request, so they are refused. */
const READS_ONLY = ['standby', 'prefer-standby', 'read-only'] as const;
/** DATABASE_READ_URL's values: its hosts are read from, each on its own (src/db/reads). */
const READ_ATTRS = ['any', ...READS_ONLY] as const;

/** The parts of a postgres:// URL, or a reason it is not one (never the URL itself). */
export function parseDbUrl(
  url: string,
  use: 'primary' | 'reads' = 'primary',
): DbUrlParts | { problem: string } {
  const split = splitAuthority(url.trim());
  if (!split) return { problem: 'is not a postgres:// URL' };
  const { scheme, auth, hostList, rest } = split;
  const hosts: Array<{ host: string; port: number }> = [];
  for (const h of hostList.split(',')) {
    const hp = /^(\[[^\]]+\]|[^:]*)(?::(\d{1,5}))?$/.exec(h);
    if (!hp) return { problem: 'has a host that is not host[:port]' };
    const port = Number(hp[2] ?? 5432);
    if (port < 1 || port > 65535) return { problem: 'has a port outside 1..65535' };
    hosts.push({ host: hp[1]!.replace(/^\[|\]$/g, '') || 'localhost', port });
  }
  let parsed: URL;
  try {
    // WHATWG URL takes one host: parse with the first, as postgres.js does.
    parsed = new URL(
      `${scheme}${auth !== undefined ? `${auth}@` : ''}${hostList.split(',')[0]}${rest}`,
    );
  } catch {
    return { problem: 'is not a postgres:// URL' };
  }
  const attrs = parsed.searchParams.get('target_session_attrs');
  if (use === 'reads') {
    if (attrs !== null && !(READ_ATTRS as readonly string[]).includes(attrs)) {
      return {
        problem: `has target_session_attrs=${attrs}, not one of ${READ_ATTRS.join(', ')} (a read URL names standbys)`,
      };
    }
  } else if (attrs !== null && !(SESSION_ATTRS as readonly string[]).includes(attrs)) {
    return {
      problem: (READS_ONLY as readonly string[]).includes(attrs)
        ? `has target_session_attrs=${attrs}, which would send Keel's writes to a standby (use ${SESSION_ATTRS.join(', ')})`
        : `has target_session_attrs=${attrs}, not one of ${SESSION_ATTRS.join(', ')}`,
    };
  }
  try {
    return {
      hosts,
      username: decodeURIComponent(parsed.username),
      password: decodeURIComponent(parsed.password),
      database: decodeURIComponent(parsed.pathname.replace(/^\//, '')),
      params: parsed.searchParams,
    };
  } catch {
    return { problem: 'has a bad percent-escape (write % as %25)' };
  }
}

/** Parts of a URL the config schema already accepted. */
export function dbUrlParts(url: string, use: 'primary' | 'reads' = 'primary'): DbUrlParts {
  const p = parseDbUrl(url, use);
  if ('problem' in p) throw new Error(`database URL ${p.problem}`);
  return p;
}

/**
 * With several hosts, the patched postgres.js asks each host its role
 * (docs/driver-patch.md); `target_session_attrs=read-write` makes it skip a standby, in any
 * order, so after a failover the pool finds the new primary. A value the URL carries is kept.
 */
export function withSessionAttrs(url: string): string {
  const p = dbUrlParts(url);
  if (p.hosts.length < 2 || p.params.has('target_session_attrs')) return url;
  return `${url}${url.includes('?') ? '&' : '?'}target_session_attrs=read-write`;
}

/** `url` with its host list replaced by one host (to ask that host alone, e.g. its role). */
export function withHost(url: string, host: string, port: number): string {
  const s = splitAuthority(url.trim());
  if (!s) throw new Error('database URL is not a postgres:// URL');
  const h = host.includes(':') ? `[${host}]` : host;
  return `${s.scheme}${s.auth !== undefined ? `${s.auth}@` : ''}${h}:${port}${s.rest}`;
}

/** A URL safe to print: the password replaced by `***`. */
export function redactUrl(url: string): string {
  const s = splitAuthority(url.trim());
  if (!s) return '<unparseable url>';
  const colon = s.auth?.indexOf(':') ?? -1;
  const auth =
    s.auth === undefined ? '' : `${colon < 0 ? s.auth : `${s.auth.slice(0, colon)}:***`}@`;
  return `${s.scheme}${auth}${s.hostList}${s.rest}`;
}

/** scheme://[auth@]hosts/rest, the userinfo ending at the authority's last '@'. */
function splitAuthority(
  url: string,
): { scheme: string; auth: string | undefined; hostList: string; rest: string } | null {
  const m = /^(postgres(?:ql)?:\/\/)([^/?#]*)(.*)$/is.exec(url);
  if (!m) return null;
  const authority = m[2]!;
  const at = authority.lastIndexOf('@');
  return {
    scheme: m[1]!,
    auth: at < 0 ? undefined : authority.slice(0, at),
    hostList: authority.slice(at + 1),
    rest: m[3]!,
  };
}
