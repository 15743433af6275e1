/** Runs `keel diagnose` in-process (the real entry point's `main`) and captures what it prints. */
import { main } from '../../src/cli/diagnose';
import type { Report } from '../../src/cli/diagnose/report';

export interface DiagnoseRun {
  code: number;
  stdout: string;
  stderr: string;
}

export async function diagnose(
  env: Record<string, string>,
  args: string[] = [],
): Promise<DiagnoseRun> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, env, {
    stdout: { write: (s: string | Uint8Array) => ((stdout += String(s)), true) },
    stderr: { write: (s: string | Uint8Array) => ((stderr += String(s)), true) },
  });
  return { code, stdout, stderr };
}

export async function diagnoseJson(
  env: Record<string, string>,
  args: string[] = [],
): Promise<DiagnoseRun & { report: Report }> {
  const run = await diagnose(env, ['--json', ...args]);
  return { ...run, report: JSON.parse(run.stdout) as Report };
}

export const byId = (report: Report, id: string) => report.checks.find((c) => c.id === id);
