/** How a failed request is tallied: its error code (ECONNRESET, UND_ERR_...), else its name. */
export function errorName(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown } | null;
  return String(e?.code ?? e?.name ?? 'error');
}

/** A failed probe in a message: its error code, else its message. */
export function errorCode(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | null;
  return String(e?.code ?? e?.message);
}
