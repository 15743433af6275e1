/**
 * Reads a V8 .cpuprofile and says where the time went: self time per function, and per
 * "owner" — the package or Keel file responsible for it. Time spent inside Node's own modules
 * (streams, sockets, timers) is charged to the nearest caller that is a package or Keel file,
 * so "winston" includes the stream writes winston causes.
 */
import fs from 'node:fs';
import path from 'node:path';

import { ROOT } from './fixtures';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

/** The parts of V8's .cpuprofile read here. */
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

interface Share {
  name: string;
  ms: number;
  share: number;
}

export type Analysis = ReturnType<typeof analyseProfile>;

/** Who a frame belongs to, or null for Node core / V8 frames (charged to their caller). */
function ownerOf(frame: CallFrame): string | null {
  const url = frame.url || '';
  if (!url) {
    const special = frame.functionName;
    return special === '(garbage collector)' || special === '(idle)' || special === '(program)'
      ? special
      : null;
  }
  if (url.startsWith('node:')) return null;
  const file = url.replace(/^file:\/\//, '');
  const nm = file.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const parts = file.slice(nm + '/node_modules/'.length).split('/');
    const [scope = '', name = ''] = parts;
    return scope.startsWith('@') ? `${scope}/${name}` : scope;
  }
  // The working tree's dist/ or a run's snapshot of it (snapshot.js).
  const dist = file.lastIndexOf('/dist/');
  if (dist !== -1) return `keel ${file.slice(dist + '/dist/'.length).replace(/\.js$/, '')}`;
  return path.relative(ROOT, file);
}

function analyseProfile(file: string) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }

  const owners = new Map<string, number>();
  const functions = new Map<string, number>();
  const coreByOwner = new Map<string, number>();
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    totalUs += us;
    const frame = byId.get(id)!.callFrame;
    const fnKey =
      `${frame.functionName || '(anonymous)'} ${frame.url ? `${ownerOf(frame) ?? frame.url.replace(/^node:/, 'node:')}:${frame.lineNumber + 1}` : ''}`.trim();
    functions.set(fnKey, (functions.get(fnKey) ?? 0) + us);
    let owner = ownerOf(frame);
    const core = owner === null ? frame.url || frame.functionName : null;
    for (let p = parent.get(id); owner === null && p !== undefined; p = parent.get(p)) {
      owner = ownerOf(byId.get(p)!.callFrame);
    }
    owner ??= 'node core (no JS caller: event loop, I/O callbacks)';
    owners.set(owner, (owners.get(owner) ?? 0) + us);
    if (core) {
      const k = `${owner} → ${core}`;
      coreByOwner.set(k, (coreByOwner.get(k) ?? 0) + us);
    }
  }
  const top = (m: Map<string, number>, n: number): Share[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, ms: us / 1000, share: us / totalUs }));
  return {
    file,
    totalMs: totalUs / 1000,
    owners: top(owners, 25),
    functions: top(functions, 30),
    coreCalls: top(coreByOwner, 15),
  };
}

/** `requests`: answers served while profiled, to show each line as µs per request too. */
function renderProfile(a: Analysis, requests: number): string {
  const perReq = (ms: number) =>
    requests ? `${((ms * 1000) / requests).toFixed(1).padStart(6)} µs/req` : '';
  const pct = (s: number, ms: number) =>
    `${(s * 100).toFixed(1).padStart(5)} %${perReq(ms) ? `  ${perReq(ms)}` : ''}`;
  const lines = [
    `CPU profile ${a.file} (${(a.totalMs / 1000).toFixed(1)} s sampled` +
      `${requests ? `, ${requests} requests answered` : ''})`,
    '',
  ];
  lines.push('by owner (Node core time charged to the package / Keel file that called it):');
  for (const o of a.owners) lines.push(`  ${pct(o.share, o.ms)}  ${o.name}`);
  lines.push('', 'Node core time, by the owner that caused it:');
  for (const o of a.coreCalls) lines.push(`  ${pct(o.share, o.ms)}  ${o.name}`);
  lines.push('', 'hottest functions (self time):');
  for (const f of a.functions) lines.push(`  ${pct(f.share, f.ms)}  ${f.name}`);
  return lines.join('\n');
}

export { analyseProfile, renderProfile };
