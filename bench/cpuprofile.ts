/**
 * Reads a V8 .cpuprofile and says where the time went: self time per function, and per
 * "owner" — the package or Keel file responsible for it. Time spent inside Node's own modules
 * (streams, sockets, timers) is charged to the nearest caller that is a package or Keel file,
 * so "winston" includes the stream writes winston causes. A .heapprofile (sampled allocations,
 * `--profile --alloc`) is read the same way, with bytes allocated in place of time.
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

/** A node of V8's sampling heap profile (.heapprofile): a call tree with bytes at each node. */
interface HeapNode {
  id: number;
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}

interface Share {
  name: string;
  /** ms of self time (a CPU profile) or bytes allocated (a heap profile). */
  amount: number;
  share: number;
}

type Unit = 'ms' | 'bytes';

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

/** A CPU profile: self time (µs) per node. */
function readCpuProfile(file: string) {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  return { nodes: profile.nodes, self };
}

/** A heap profile, flattened: bytes allocated per node. */
function readHeapProfile(file: string) {
  const { head } = JSON.parse(fs.readFileSync(file, 'utf8')) as { head: HeapNode };
  const nodes: ProfileNode[] = [];
  const self = new Map<number, number>();
  for (const stack = [head]; stack.length;) {
    const n = stack.pop()!;
    nodes.push({ id: n.id, callFrame: n.callFrame, children: n.children.map((c) => c.id) });
    if (n.selfSize) self.set(n.id, n.selfSize);
    stack.push(...n.children);
  }
  return { nodes, self };
}

function analyseProfile(file: string) {
  const unit: Unit = file.endsWith('.heapprofile') ? 'bytes' : 'ms';
  const { nodes, self } = unit === 'bytes' ? readHeapProfile(file) : readCpuProfile(file);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const owners = new Map<string, number>();
  const functions = new Map<string, number>();
  const coreByOwner = new Map<string, number>();
  let total = 0;
  for (const [id, v] of self) {
    total += v;
    const frame = byId.get(id)!.callFrame;
    const fnKey =
      `${frame.functionName || '(anonymous)'} ${frame.url ? `${ownerOf(frame) ?? frame.url.replace(/^node:/, 'node:')}:${frame.lineNumber + 1}` : ''}`.trim();
    functions.set(fnKey, (functions.get(fnKey) ?? 0) + v);
    let owner = ownerOf(frame);
    const core = owner === null ? frame.url || frame.functionName : null;
    for (let p = parent.get(id); owner === null && p !== undefined; p = parent.get(p)) {
      owner = ownerOf(byId.get(p)!.callFrame);
    }
    owner ??= 'node core (no JS caller: event loop, I/O callbacks)';
    owners.set(owner, (owners.get(owner) ?? 0) + v);
    if (core) {
      const k = `${owner} → ${core}`;
      coreByOwner.set(k, (coreByOwner.get(k) ?? 0) + v);
    }
  }
  // Time is sampled in µs and shown in ms; bytes are bytes.
  const scale = unit === 'ms' ? 1000 : 1;
  const top = (m: Map<string, number>, n: number): Share[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, v]) => ({ name, amount: v / scale, share: v / total }));
  return {
    file,
    unit,
    total: total / scale,
    owners: top(owners, 25),
    functions: top(functions, 30),
    coreCalls: top(coreByOwner, 15),
  };
}

/** `requests`: answers served while profiled, to show each line per request too. */
function renderProfile(a: Analysis, requests: number): string {
  const bytes = a.unit === 'bytes';
  const perReq = (v: number) => {
    if (!requests) return '';
    return bytes
      ? `${(v / requests).toFixed(0).padStart(7)} B/req`
      : `${((v * 1000) / requests).toFixed(1).padStart(6)} µs/req`;
  };
  const pct = (s: number, v: number) =>
    `${(s * 100).toFixed(1).padStart(5)} %${perReq(v) ? `  ${perReq(v)}` : ''}`;
  const lines = [
    bytes
      ? `Heap profile ${a.file} (${(a.total / 1048576).toFixed(1)} MB allocated` +
        `${requests ? `, ${requests} requests answered: ${(a.total / requests).toFixed(0)} B/req` : ''})`
      : `CPU profile ${a.file} (${(a.total / 1000).toFixed(1)} s sampled` +
        `${requests ? `, ${requests} requests answered` : ''})`,
    '',
  ];
  const what = bytes ? 'bytes' : 'time';
  lines.push(`by owner (Node core ${what} charged to the package / Keel file that called it):`);
  for (const o of a.owners) lines.push(`  ${pct(o.share, o.amount)}  ${o.name}`);
  lines.push('', `Node core ${what}, by the owner that caused it:`);
  for (const o of a.coreCalls) lines.push(`  ${pct(o.share, o.amount)}  ${o.name}`);
  lines.push('', bytes ? 'allocating functions (self bytes):' : 'hottest functions (self time):');
  for (const f of a.functions) lines.push(`  ${pct(f.share, f.amount)}  ${f.name}`);
  return lines.join('\n');
}

export { analyseProfile, renderProfile };
