/**
 * Contract steps (docs/migrations.md, expand / contract): a file marked `-- keel:contract
 * <expand file>` drops what the release before that expand file still uses. Workers never apply
 * one at boot; the migrate command applies it only once its gate (./../cli/pm2-fleet) finds no
 * online worker of a release without the expand file.
 */
import type { Logger } from '../logger';
import { MigrationFileError, type MigrationFile } from './migration-file';

/** A worker as the gate sees it: `schema` is the newest migration file its release ships. */
export interface FleetWorker {
  pid: number;
  id: number;
  status: string;
  /** null: the worker does not say (a release from before this check, or PM2 metrics off). */
  schema: string | null;
}

/** Decides whether a contract step may run now; throws ContractRefused if not. */
export type ContractGate = (file: MigrationFile & { contract: string }) => Promise<void>;

/** A contract step was refused: nothing of this run was applied. */
export class ContractRefused extends Error {
  readonly code = 'KEEL_CONTRACT_REFUSED';
  constructor(
    readonly migration: string,
    readonly expand: string,
    readonly reason: string,
    readonly workers: FleetWorker[] = [],
  ) {
    super(`${migration} (contract of ${expand}) refused: ${reason}`);
    this.name = 'ContractRefused';
  }
}

/** Online workers whose release does not ship `expand` (or does not say what it ships). */
export function previousRelease(workers: FleetWorker[], expand: string): FleetWorker[] {
  return workers.filter((w) => w.schema === null || w.schema < expand);
}

/**
 * How many of the `pending` files (in order) this run applies: all of them once `gate` has let
 * every contract step among them through, or, without a gate (a worker at boot), those before
 * the first contract step.
 */
export async function pendingToApply(
  pending: string[],
  files: Map<string, MigrationFile>,
  known: string[],
  gate: ContractGate | undefined,
  log: Logger,
): Promise<number> {
  for (const [i, name] of pending.entries()) {
    const file = files.get(name)!;
    const expand = file.contract;
    if (expand === undefined) continue;
    if (!known.includes(expand)) {
      throw new MigrationFileError(
        name,
        `its contract marker names ${expand}, which is not in the folder`,
      );
    }
    if (!gate) {
      log.info('contract step left for the migrate command', { migration: name, expand });
      return i;
    }
    await gate({ ...file, contract: expand });
  }
  return pending.length;
}
