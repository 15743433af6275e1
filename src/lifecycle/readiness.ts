/** The worker's readiness: draining (set once by shutdown) and whether the schema is in place. */
export interface Readiness {
  draining(): boolean;
  startDraining(): void;
  migrated(): boolean;
  markMigrated(): void;
}

export function createReadiness(): Readiness {
  let draining = false;
  let migrated = false;
  return {
    draining: () => draining,
    startDraining() {
      draining = true;
    },
    migrated: () => migrated,
    markMigrated() {
      migrated = true;
    },
  };
}
