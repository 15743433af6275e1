import { parseDiagnoseArgs, UsageError } from '../../../../src/cli/diagnose/args';

test('arguments: `keel diagnose` forms, defaults, bounds', () => {
  expect(
    parseDiagnoseArgs(['diagnose', '--idle-probe', '--max', '600', '--connections', '4']),
  ).toMatchObject({ idleProbe: true, maxMs: 600_000, connections: 4, json: false });
  expect(parseDiagnoseArgs([])).toMatchObject({
    maxMs: 900_000,
    connections: 8,
    roundTrips: 100,
    probeTimeoutMs: 5000,
  });
  expect(() => parseDiagnoseArgs(['--max', 'soon'])).toThrow(UsageError);
  expect(() => parseDiagnoseArgs(['--connections', '0'])).toThrow(
    /--connections must be a number from 1 to 64/,
  );
  expect(() => parseDiagnoseArgs(['migrate'])).toThrow(/unknown command or argument: migrate/);
});
