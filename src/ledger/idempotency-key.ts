/**
 * The one place that maps an `Idempotency-Key` to the key row it names. A request without a
 * key gets one made here (`keel-gen-<uuid>`, returned in the answer's header): it is stored as
 * `gen:<uuid>`, kept only minutes, and a retry that sends it back finds the same row. Any
 * other key is the client's own, stored as `client:<key>` for the contract's 24 h and more.
 */
import { randomUUID } from 'node:crypto';

export interface IdempotencyKey {
  /** What the answer's `Idempotency-Key` header says. */
  header: string;
  /** The primary key of the row in `idempotency_keys`. */
  stored: string;
  generated: boolean;
}

const GENERATED = /^keel-gen-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/** Stored keys of generated keys start with this (the janitor's shorter expiry). */
const GENERATED_PREFIX = 'gen:';

export function idempotencyKey(clientKey: string | undefined): IdempotencyKey {
  if (clientKey === undefined) {
    const id = randomUUID();
    return { header: `keel-gen-${id}`, stored: `${GENERATED_PREFIX}${id}`, generated: true };
  }
  const gen = GENERATED.exec(clientKey);
  if (gen) return { header: clientKey, stored: `${GENERATED_PREFIX}${gen[1]}`, generated: true };
  return { header: clientKey, stored: `client:${clientKey}`, generated: false };
}
