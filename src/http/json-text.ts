/**
 * Text Postgres cannot store as sent: U+0000 (text columns refuse it) and unpaired UTF-16
 * surrogates (the driver would write U+FFFD in their place, silently changing the data). A
 * parsed JSON body is searched for both, in keys and values, so the client gets a 400 that
 * names the field instead of a 500 or a changed value.
 */

// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export interface TextProblem {
  path: string;
  message: string;
}

function problem(s: string): string | null {
  if (s.includes('\u0000')) return 'must not contain U+0000';
  if (LONE_SURROGATE.test(s)) return 'must not contain an unpaired surrogate (not valid Unicode)';
  return null;
}

/** The first string in `value` that cannot be stored, with its dotted path (`what` at the root). */
export function findUnstorableText(value: unknown, what = 'body'): TextProblem | null {
  const walk = (v: unknown, path: string[]): TextProblem | null => {
    const where = () => path.join('.') || what;
    if (typeof v === 'string') {
      const p = problem(v);
      return p ? { path: where(), message: p } : null;
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const found = walk(v[i], [...path, String(i)]);
        if (found) return found;
      }
      return null;
    }
    if (v && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) {
        const p = problem(k);
        if (p) return { path: where(), message: `has a key that ${p}` };
        const found = walk(child, [...path, k]);
        if (found) return found;
      }
    }
    return null;
  };
  return walk(value, []);
}
