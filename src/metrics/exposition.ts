/**
 * Sample values that JSON and prom-client get wrong. JSON has no NaN or infinities
 * (`JSON.stringify(NaN)` is `null`, which prom-client then prints as `+Inf`), and prom-client
 * 15 prints NaN as `Nan`, which strict parsers (OpenMetrics) reject; the text format spells
 * them `NaN`, `+Inf` and `-Inf`.
 */

const NON_FINITE: Record<string, number> = { NaN: NaN, '+Inf': Infinity, '-Inf': -Infinity };

function spell(v: number): string {
  return Number.isNaN(v) ? 'NaN' : v > 0 ? '+Inf' : '-Inf';
}

/** JSON for a registry snapshot: non-finite sample values travel as their text spelling. */
export function snapshotToJson(snapshot: unknown): string {
  return JSON.stringify(snapshot, (key, v: unknown) =>
    key === 'value' && typeof v === 'number' && !Number.isFinite(v) ? spell(v) : v,
  );
}

/** The inverse of `snapshotToJson`. */
export function snapshotFromJson(text: string): unknown {
  return JSON.parse(text, (key, v: unknown) =>
    key === 'value' && typeof v === 'string' && v in NON_FINITE ? NON_FINITE[v] : v,
  );
}

/** prom-client's `Nan` sample values, spelled as the text format wants. */
export function fixNaN(text: string): string {
  return text.includes(' Nan') ? text.replace(/^([^#\n][^\n]*) Nan$/gm, '$1 NaN') : text;
}
