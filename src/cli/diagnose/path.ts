/**
 * The path to the database, one step at a time: DNS, TCP connect, whether TLS is offered
 * against what the configuration asks for, authentication and the first query.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import type { Config } from '../../config/config';
import { sendSslRequest } from '../../db/ssl-request';
import type { Clients, Sql } from '../../db/probe-clients';
import { describeUrl, explainConnectError, hostPort, since } from './connections';
import { check, type Check } from './report';

export interface PathResult {
  checks: Check[];
  /** An open client on the pooled URL when authentication succeeded. */
  sql: Sql | null;
  /** The server answered an SSLRequest with 'S'. */
  tlsOffered: boolean | null;
}

function isLocal(address: string): boolean {
  return /^(127\.|::1$|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|fd|fc|fe80)/i.test(address);
}

/** TCP connect time and whether TLS is offered, from the worker's own SSLRequest. */
async function tcpProbe(
  address: string,
  port: number,
  timeoutMs: number,
): Promise<{ connectMs: number; tls: boolean }> {
  const r = await sendSslRequest({ host: address, port }, timeoutMs);
  if (r.kind === 'answered') return { connectMs: r.connectMs, tls: r.tls };
  if (r.kind === 'closed') return { connectMs: r.connectMs, tls: false };
  if (r.kind === 'error') throw r.error;
  throw Object.assign(new Error('connect timed out'), { code: 'CONNECT_TIMEOUT' });
}

interface HostPath {
  checks: Check[];
  /** DNS, TCP and TLS all passed. */
  ok: boolean;
  tls: boolean | null;
}

/** DNS, TCP connect and TLS offer for one host of the URL. */
async function checkHost(
  config: Config,
  target: { host: string; port: number },
  where: { user: string; db: string },
  label: string,
): Promise<HostPath> {
  const checks: Check[] = [];
  const fail = (id: `path.${string}`, err: unknown): HostPath => {
    const f = explainConnectError(err, { ...where, hostPort: hostPort(target) });
    checks.push(check(id, 'fail', f.kind, null, `${label}${f.summary}`, f.fix, { kind: f.kind }));
    return { checks, ok: false, tls: null };
  };

  // 1. DNS, both families: the driver connects to the first answer.
  let addresses: { address: string; family: number }[];
  const t0 = performance.now();
  try {
    addresses = await dns.lookup(target.host, { all: true });
  } catch (err) {
    return fail('path.dns', err);
  }
  const dnsMs = since(t0);
  const v4 = addresses.filter((a) => a.family === 4).map((a) => a.address);
  const v6 = addresses.filter((a) => a.family === 6).map((a) => a.address);
  const v6only = v4.length === 0 && v6.length > 0;
  checks.push(
    check(
      'path.dns',
      'ok',
      dnsMs,
      'ms',
      `${target.host} -> A [${v4.join(', ')}] AAAA [${v6.join(', ')}]${v6only ? ' (IPv6 only)' : ''}`,
      null,
      { host: target.host, a: v4, aaaa: v6, ipv6Only: v6only },
    ),
  );
  // An IPv6-only database name means an IPv6 private network (Railway's *.railway.internal):
  // other services reach this one over it only if it listens on IPv6 too.
  if (v6only && (config.host === '0.0.0.0' || net.isIPv4(config.host))) {
    checks.push(
      check(
        'path.listen',
        'warn',
        config.host,
        null,
        `HOST=${config.host} listens on IPv4 only, while the database answers on IPv6 only (a private IPv6 network)`,
        'set HOST=:: so services on the private network can reach this one',
      ),
    );
  }

  // 2. TCP connect, and 3. whether the server offers TLS (an SSLRequest answered 'S' or 'N').
  const first = addresses[0]!.address;
  let probe: { connectMs: number; tls: boolean };
  try {
    probe = await tcpProbe(first, target.port, config.db.connectTimeoutS * 1000);
  } catch (err) {
    return fail('path.tcp', err);
  }
  checks.push(
    check('path.tcp', 'ok', probe.connectMs, 'ms', `TCP connect to ${first}:${target.port}`, null, {
      host: target.host,
    }),
  );
  const tls = probe.tls;
  const wanted = config.db.ssl;
  const tlsData = { host: target.host, offered: tls, configured: wanted };
  if (!tls && (wanted === 'require' || wanted === 'verify-full')) {
    return fail('path.tls', new Error('the server does not support SSL'));
  }
  if (!tls && wanted === 'prefer') {
    checks.push(
      check(
        'path.tls',
        'warn',
        'plain',
        null,
        `${label}sslmode=prefer, and the server offers no TLS: the connection is not encrypted`,
        'use a TLS endpoint, or say DB_SSL=false if this is a private network',
        tlsData,
      ),
    );
  } else if (tls && !wanted && !isLocal(first)) {
    checks.push(
      check(
        'path.tls',
        'warn',
        'plain',
        null,
        `${label}the server offers TLS but Keel connects without it (DB_SSL/sslmode unset) over ${first}`,
        'add ?sslmode=require to the URL (or DB_SSL=require)',
        tlsData,
      ),
    );
  } else {
    const how = wanted ? `TLS (${wanted})` : 'plain TCP';
    checks.push(
      check(
        'path.tls',
        'ok',
        wanted ? 'tls' : 'plain',
        null,
        `${label}${how}; the server ${tls ? 'offers' : 'does not offer'} TLS`,
        null,
        tlsData,
      ),
    );
  }
  return { checks, ok: true, tls };
}

export async function checkPath(config: Config, clients: Clients): Promise<PathResult> {
  const where = describeUrl(config.db.url);
  const several = where.hosts.length > 1;
  // A host list (h1:5432,h2:5432, a documented feature): the driver tries each in turn, so
  // each host's path is checked; one that fails while another works costs only the failover.
  const hosts: HostPath[] = [];
  for (const h of where.hosts)
    hosts.push(await checkHost(config, h, where, several ? `${hostPort(h)}: ` : ''));
  const reachable = hosts.find((h) => h.ok);
  const checks = hosts.flatMap((h) =>
    reachable && !h.ok
      ? h.checks.map((c) => (c.status === 'fail' ? unreachableHost(c) : c))
      : h.checks,
  );
  if (!reachable) return { checks, sql: null, tlsOffered: null };
  const tls = reachable.tls === true;
  const wanted = config.db.ssl;

  // 4. Authentication and 5. the first query, timed from nothing to the first row.
  const sql = clients.open(config.db.url);
  const t1 = performance.now();
  try {
    await sql`select 1`;
  } catch (err) {
    const f = explainConnectError(err, where);
    checks.push(check('path.auth', 'fail', f.kind, null, f.summary, f.fix, { kind: f.kind }));
    return { checks, sql: null, tlsOffered: null };
  }
  const firstMs = since(t1);
  checks.push(
    check(
      'path.auth',
      'ok',
      firstMs,
      'ms',
      `user "${where.user}" logged in to "${where.db}"${several ? ` on one of ${where.hostPort}` : ''}; first query answered (connect${tls && wanted ? ' + TLS' : ''} + auth + query)`,
    ),
  );
  return { checks, sql, tlsOffered: tls };
}

/** A host of a list that fails while another answers: the pool works, a failover to it would not. */
function unreachableHost(c: Check): Check {
  return {
    ...c,
    status: 'warn',
    summary: `${c.summary} (another host of DATABASE_URL answers: only a failover to this one would fail)`,
  };
}

/** pg_stat_ssl for our own session: what was really negotiated (skipped behind a pooler). */
export async function checkSessionTls(sql: Sql, config: Config): Promise<Check> {
  const [row] = await sql<{ ssl: boolean; version: string | null; cipher: string | null }[]>`
    select ssl, version, cipher from pg_stat_ssl where pid = pg_backend_pid()`;
  const wanted = config.db.ssl !== false;
  const on = row?.ssl === true;
  const value = on ? `${row?.version} ${row?.cipher}` : 'off';
  const data = { ssl: on, version: row?.version ?? null, cipher: row?.cipher ?? null };
  // Behind a proxy that terminates TLS the server's own view is plain while ours is not.
  if (wanted && !on)
    return check(
      'path.pg_stat_ssl',
      'warn',
      value,
      null,
      'the server sees this session unencrypted: something in between terminates TLS',
      'make sure the hop after the proxy is a private network',
      data,
    );
  return check(
    'path.pg_stat_ssl',
    'ok',
    value,
    null,
    `the server sees this session ${on ? 'encrypted' : 'unencrypted'}`,
    null,
    data,
  );
}
