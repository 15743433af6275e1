/**
 * The scaling run's pure parts (bench/scale.ts, bench/scale-report.ts): its flags, the
 * side-by-side table, the notes built from the figures, the Markdown section and the HTML chart.
 * No load is run here; the figures are made up and only their arithmetic is checked.
 */
import { scaleOpts, windowFlag } from '../../../bench/scale';
import {
  bendNotes,
  renderScaleReport,
  scaleMarkdown,
  scaleRows,
  type ScaleCell,
} from '../../../bench/scale-report';

function cell(over: Partial<ScaleCell>): ScaleCell {
  return {
    target: 'keel',
    workers: 2,
    connections: 32,
    rps: 1000,
    p50Ms: 2,
    p99Ms: 10,
    non2xx: 0,
    socketErrors: 0,
    appMs: 0.3,
    postgresMs: 0.1,
    wrkMs: 0.1,
    machineBusy: 1,
    cpuValid: true,
    restarts: null,
    ...over,
  };
}

// Keel and the baseline at 1 and 4 workers, 8 and 512 connections.
const CELLS: ScaleCell[] = [
  cell({ workers: 1, connections: 8, rps: 2000, p99Ms: 5 }),
  cell({ workers: 1, connections: 512, rps: 2100, p99Ms: 300 }),
  cell({ workers: 4, connections: 8, rps: 3000, p99Ms: 4 }),
  cell({ workers: 4, connections: 512, rps: 3100, p99Ms: 250 }),
  cell({ target: 'baseline', workers: 1, connections: 8, rps: 4000, p99Ms: 3, appMs: 0.1 }),
  cell({ target: 'baseline', workers: 1, connections: 512, rps: 5000, p99Ms: 90, appMs: 0.1 }),
  cell({ target: 'baseline', workers: 4, connections: 8, rps: 5000, p99Ms: 2, appMs: 0.1 }),
];

describe('flags', () => {
  test('the default matrix, and lists deduplicated in ascending order', () => {
    expect(scaleOpts({ 'scale-connections': '8,32,128,512', 'scale-workers': '1,2,4' })).toEqual({
      connections: [8, 32, 128, 512],
      workers: [1, 2, 4],
    });
    expect(scaleOpts({ 'scale-connections': '32,8,32', 'scale-workers': '2' })).toEqual({
      connections: [8, 32],
      workers: [2],
    });
  });

  test.each([
    ['scale-connections', '8,,32'],
    ['scale-connections', '0'],
    ['scale-connections', 'many'],
    ['scale-workers', '9'],
    ['scale-workers', '1.5'],
    ['scale-workers', ''],
  ])('--%s %p is refused naming the flag', (name, value) => {
    const values = { 'scale-connections': '8', 'scale-workers': '1', [name]: value };
    expect(() => scaleOpts(values)).toThrow(`--${name} takes integers`);
  });

  test('the windows: the flag when given, else the mode default; range-checked', () => {
    expect(windowFlag({}, 'warmup-s', 2)).toBe(2);
    expect(windowFlag({ 'measure-s': '7' }, 'measure-s', 5)).toBe(7);
    expect(() => windowFlag({ 'warmup-s': '0' }, 'warmup-s', 2)).toThrow('--warmup-s');
    expect(() => windowFlag({ 'warmup-s': '61' }, 'warmup-s', 2)).toThrow('--warmup-s');
  });
});

test('the table: one row per workers x connections, Keel and the baseline side by side', () => {
  const rows = scaleRows([...CELLS, cell({ workers: 4, connections: 32, cpuValid: false })]);
  expect(rows[0]).toEqual(expect.arrayContaining(['req/s keel', 'req/s base', 'keel/base']));
  const body = rows.slice(1).map((r) => r.slice(0, 5));
  expect(body).toEqual([
    ['1', '8', '2000', '4000', '0.50x'],
    ['1', '512', '2100', '5000', '0.42x'],
    ['4', '8', '3000', '5000', '0.60x'],
    ['4', '32', '1000', '-', '-'],
    ['4', '512', '3100', '-', '-'],
  ]);
  const cpu = rows[0]!.indexOf('app CPU ms/req keel / base');
  expect(rows[1]![cpu]).toBe('0.300 / 0.100');
  expect(rows[4]![cpu]).toBe('invalid / -');
  expect(rows[4]![cpu + 1]).toBe('invalid / -');
});

describe('why the curve bends', () => {
  const notes = bendNotes(CELLS, 2);

  test('each peak with its cell, and what workers beyond the cores added', () => {
    expect(notes).toContain(
      'keel peaked at 3100 req/s (4 workers, 512 connections, p99 250.0 ms, box 100 % busy).',
    );
    expect(notes).toContain(
      "keel's best req/s by worker count: 1 → 4 workers +48 %. The box has 2 cores: workers " +
        'beyond 2 cannot add CPU, only share it.',
    );
    expect(notes.join(' ')).toContain('baseline peaked at 5000 req/s (1 worker, 512 connections');
    expect(bendNotes(CELLS, 8).join(' ')).not.toContain('cannot add CPU');
  });

  test('connections: req/s and p99 from the fewest to the most, the queue named only when flat', () => {
    expect(notes).toContain(
      'At 4 workers, 8 → 512 connections: req/s +3 %, p99 4.0 → 250.0 ms, box 100 → 100 % busy ' +
        '(throughput within 10 % while p99 more than doubled: the extra connections wait in line).',
    );
    expect(notes).toContain(
      'At 1 worker, 8 → 512 connections: req/s +25 %, p99 3.0 → 90.0 ms, box 100 → 100 % busy.',
    );
  });

  test('the CPU per answer at the peak and the req/s the cores allow at that cost', () => {
    // keel: 0.3 + 0.1 + 0.1 = 0.5 ms an answer; 2 cores: 4000 req/s at most; 3100 is 78 %.
    expect(notes).toContain(
      'CPU per answer at that peak: app 0.300 ms, Postgres 0.100 ms, wrk 0.100 ms (0.500 ms on ' +
        'the same 2 cores; Postgres and wrk 40 % of it): 2 cores allow at most 4000 req/s at ' +
        'that cost, 78 % of which was reached.',
    );
  });

  test('PM2 restarts of Keel workers are named by cell and shown in the table', () => {
    const cells = [cell({ restarts: 0 }), cell({ connections: 512, restarts: 1 })];
    expect(bendNotes(cells, 2)).toContain(
      'PM2 restarted Keel workers (by the end of: 2w/512c 1): those cells measured fewer ' +
        'workers for part of their window.',
    );
    expect(scaleRows(cells).map((r) => r[r.length - 1])).toEqual(['keel restarts', '0', '1']);
    expect(bendNotes(CELLS, 2).join(' ')).not.toContain('restarted');
  });

  test('errors are listed by cell, or their absence said', () => {
    expect(notes[notes.length - 1]).toBe('No cell had a non-2xx answer or a socket error.');
    const bad = bendNotes([cell({ connections: 512, non2xx: 3, socketErrors: 2 })], 2);
    expect(bad[bad.length - 1]).toBe('Errors: keel 2w/512c 3 non-2xx, 2 socket errors.');
    const lost = bendNotes(CELLS, 2, [
      { target: 'keel', workers: 4, connections: 512, why: 'wrk failed: connection refused' },
    ]);
    expect(lost).toContain('Not measured: keel 4w/512c (wrk failed: connection refused).');
  });
});

test('the Markdown section: table and notes under their headings', () => {
  const md = scaleMarkdown({
    startedAt: '2026-12-07T22:00:00.000Z',
    nproc: 2,
    warmupS: 2,
    measureS: 5,
    cells: CELLS,
    missed: [],
    machineLine: 'a box',
  });
  expect(md).toMatch(/^## Scaling \(`npm run bench -- --scale`, 2026-12-07T22:00Z\)/);
  expect(md).toContain('| workers | connections | req/s keel | req/s base |');
  expect(md).toContain('| 1 | 8 | 2000 | 4000 | 0.50x |');
  expect(md).toContain('### Why the curve bends (from the figures above)');
  expect(md).toContain('keel peaked at 3100 req/s');
  expect(md.trimEnd().endsWith('Machine: a box.')).toBe(true);
});

test('the HTML page: two SVG panels, a line per target x workers, no scripts or network', () => {
  const html = renderScaleReport({
    startedAt: '2026-12-07T22:00:00.000Z',
    nproc: 2,
    warmupS: 2,
    measureS: 5,
    cells: CELLS,
    missed: [{ target: 'keel', workers: 1, connections: 512, why: 'wrk failed: <refused>' }],
    machineLine: 'a <box>',
  });
  expect(html.match(/<svg /g)).toHaveLength(2);
  // keel x1, keel x4, baseline x1, baseline x4: a polyline each in each panel.
  expect(html.match(/<polyline /g)).toHaveLength(8);
  expect(html.match(/<circle /g)).toHaveLength(2 * CELLS.length);
  // No answers: a point at 0 req/s, none on the log p99 axis.
  const none = renderScaleReport({
    ...{ startedAt: '2026-12-07T22:00:00.000Z', nproc: 2, warmupS: 2, measureS: 5 },
    cells: [cell({ connections: 8 }), cell({ connections: 512, rps: 0, p99Ms: 0 })],
    missed: [],
    machineLine: 'a box',
  });
  expect(none.match(/<circle /g)).toHaveLength(3);
  for (const label of ['keel, 1 worker', 'keel, 4 workers', 'baseline, 1 worker']) {
    expect(html).toContain(`class="legend">${label}</text>`);
  }
  expect(html).toContain('wrk connections (log scale)');
  expect(html).toContain('a &lt;box&gt;');
  expect(html).toContain('Not measured: keel 1w/512c (wrk failed: &lt;refused&gt;).');
  expect(html).not.toMatch(/<script|https?:\/\/|<link|<img/);
});
