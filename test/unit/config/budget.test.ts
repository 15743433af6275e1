import { allowedConnections, checkBudget, computeBudget } from '../../../src/config/budget';

describe('computeBudget', () => {
  test('one replica of two workers: pools, one reloading worker, one migration each', () => {
    const b = computeBudget({ replicas: 1, instances: 2, poolMax: 10, deployOverlap: false });
    expect(b.steady).toBe(20);
    expect(b.parts.map((p) => [p.name, p.count])).toEqual([
      ['pools', 20],
      ['reload', 10],
      ['deploy', 0],
      ['migrations', 2],
      ['probes', 2],
    ]);
    expect(b.peak).toBe(34);
  });

  test('above two instances PM2 reloads two at a time', () => {
    expect(
      computeBudget({ replicas: 3, instances: 4, poolMax: 5, deployOverlap: false }).parts[1],
    ).toMatchObject({ count: 30 });
  });

  test('a deploy overlap doubles the pools and replaces the reload overlap (they never coincide)', () => {
    const b = computeBudget({ replicas: 2, instances: 2, poolMax: 10, deployOverlap: true });
    expect(b.peak).toBe(40 + 40 + 4 + 4);
  });
});

describe('checkBudget', () => {
  const budget = computeBudget({ replicas: 2, instances: 2, poolMax: 10, deployOverlap: false });
  // peak = 40 + 20 + 4 + 4 = 68

  test('reserved slots count only for a non-superuser, with connections held by others', () => {
    expect(
      allowedConnections({ maxConnections: 100, reserved: 3, superuser: false, others: 7 }),
    ).toBe(90);
    expect(
      allowedConnections({ maxConnections: 100, reserved: 3, superuser: true, others: 7 }),
    ).toBe(93);
  });

  test('over the limit fails with the whole arithmetic in one line', () => {
    const v = checkBudget(budget, { maxConnections: 60, reserved: 3, superuser: false, others: 2 });
    expect(v.status).toBe('fail');
    expect(v.allowed).toBe(55);
    expect(v.line).toBe(
      '2 replicas x 2 workers x 10 = 40, + 20 reload overlap + 4 migrations + 4 probes = 68 at peak > 55 allowed (max_connections 60 - 3 reserved - 2 held by others)',
    );
  });

  test('within 90 % of the limit warns, below passes', () => {
    expect(
      checkBudget(budget, { maxConnections: 70, reserved: 0, superuser: true, others: 0 }).status,
    ).toBe('warn');
    expect(
      checkBudget(budget, { maxConnections: 100, reserved: 3, superuser: false, others: 0 }).status,
    ).toBe('ok');
  });
});
