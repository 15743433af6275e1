/**
 * Text Postgres cannot store as sent: U+0000 (text columns refuse it) and unpaired UTF-16
 * surrogates (the driver would write U+FFFD in their place, silently changing the data). A
 * parsed JSON body is searched for both, in keys and values, so the client gets a 400 that
 * names the field instead of a 500 or a changed value. The walk is iterative and refuses nesting
 * deeper than MAX_JSON_DEPTH: JSON.parse accepts 20,000 nested arrays, which a recursive walk
 * would answer with a stack overflow (500).
 */

// A high surrogate not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Arrays and objects inside one another. Every body of the API is one object of scalars (depth
 * 1); 64 is the default of common JSON readers (.NET's System.Text.Json), far above any honest
 * request and far below a stack's worth.
 */
export const MAX_JSON_DEPTH = 64;

export interface TextProblem {
  path: string;
  message: string;
}

function problem(s: string): string | null {
  if (s.includes('\u0000')) return 'must not contain U+0000';
  if (LONE_SURROGATE.test(s)) return 'must not contain an unpaired surrogate (not valid Unicode)';
  return null;
}

/** A value still to visit; its path is rebuilt from the parents only when a problem is found. */
interface Pending {
  value: unknown;
  key: string | null;
  parent: Pending | null;
  depth: number;
}

function pathOf(node: Pending | null): string[] {
  const path: string[] = [];
  for (let n = node; n && n.key !== null; n = n.parent) path.push(n.key);
  return path.reverse();
}

/**
 * The first string in `value` that cannot be stored, with its dotted path (`what` at the root),
 * or the first field nested deeper than MAX_JSON_DEPTH. Time is linear in the value's size.
 */
export function findUnstorableText(value: unknown, what = 'body'): TextProblem | null {
  const where = (node: Pending | null) => pathOf(node).join('.') || what;
  const stack: Pending[] = [{ value, key: null, parent: null, depth: 0 }];
  while (stack.length > 0) {
    const node = stack.pop()!;
    const v = node.value;
    if (typeof v === 'string') {
      const p = problem(v);
      if (p) return { path: where(node), message: p };
      continue;
    }
    if (!v || typeof v !== 'object') continue;
    const depth = node.depth + 1;
    if (depth > MAX_JSON_DEPTH) {
      // Named by its top-level field (the full path would be MAX_JSON_DEPTH segments long).
      const field = Array.isArray(value) ? undefined : pathOf(node)[0];
      return {
        path: field ?? what,
        message: `is nested deeper than ${MAX_JSON_DEPTH} levels of arrays and objects`,
      };
    }
    // Children go on the stack last-first, so they are visited in document order.
    const children: Pending[] = [];
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        children.push({ value: v[i], key: String(i), parent: node, depth });
      }
    } else {
      for (const [k, child] of Object.entries(v)) {
        const p = problem(k);
        if (p) return { path: where(node), message: `has a key that ${p}` };
        children.push({ value: child, key: k, parent: node, depth });
      }
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
  }
  return null;
}
