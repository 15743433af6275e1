/**
 * Every response a contract test sees, checked against docs/openapi.json: the operation exists
 * (or the answer is the contract's 404/405), the status is documented for it, the media type is
 * the documented one, the required headers are there and every documented header present has a
 * valid value, and the body matches the status's schema (ajv, JSON Schema 2020-12, the dialect
 * of OpenAPI 3.1). `expectContract` throws with every violation listed.
 */
import { readFileSync } from 'node:fs';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { OPENAPI_FILE } from '../../src/http/routes/ops';

/** What a test saw: the request line, and the answer as it came off the wire. */
export interface SeenResponse {
  method: string;
  /** The request's path; a query string is ignored. */
  path: string;
  status: number;
  headers: Headers | Record<string, string | string[] | undefined>;
  /** The raw body text ('' for none). */
  text: string;
}

type Json = Record<string, any>;

export interface ContractChecker {
  /** Every way the response breaks the document; empty when it keeps it. */
  violations(res: SeenResponse): string[];
  /** Compiles every schema in the document (strict), so a bad one fails now, not when used. */
  compileAll(): number;
}

const DOC_ID = 'https://keel.invalid/openapi.json';
// Test-only routes (test/support/test-routes.js) are not part of the API.
const TEST_ONLY = /^\/__test\//;

function pointer(tokens: string[]): string {
  return '#/' + tokens.map((t) => t.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
}

function headerOf(headers: SeenResponse['headers'], name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(', ') : v;
}

export function createContractChecker(doc: Json): ContractChecker {
  // Strict: an unknown keyword in the document is an error here, not silently ignored.
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false });
  addFormats(ajv);
  // The whole document under one id, so every schema compiles by its JSON pointer, $refs and all.
  // OpenAPI keywords around the schemas are not JSON Schema: only the schemas are ever compiled.
  ajv.addVocabulary(['openapi', 'info', 'jsonSchemaDialect', 'tags', 'paths', 'components']);
  ajv.addSchema({ ...doc, $id: DOC_ID }, undefined, undefined, false);
  const compiled = new Map<string, ValidateFunction>();
  const validator = (tokens: string[]): ValidateFunction => {
    const ref = DOC_ID + pointer(tokens);
    let v = compiled.get(ref);
    if (!v) {
      v = ajv.compile({ $ref: ref });
      compiled.set(ref, v);
    }
    return v;
  };
  const deref = (node: Json, at: string[]): [Json, string[]] => {
    if (typeof node.$ref !== 'string') return [node, at];
    const tokens = (node.$ref as string)
      .replace(/^#\//, '')
      .split('/')
      .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
    const target = tokens.reduce<any>((n, t) => n?.[t], doc);
    if (!target) throw new Error(`openapi.json: unresolved $ref ${node.$ref as string}`);
    return deref(target as Json, tokens);
  };
  const templates = Object.keys(doc.paths as Json).map((tpl) => ({
    tpl,
    // Literal paths first: /api/accounts/{id} must not swallow a literal sibling.
    literal: !tpl.includes('{'),
    // The router matches paths case-insensitively, as the server does.
    re: new RegExp('^' + tpl.replace(/\{[^}]+\}/g, '[^/]+') + '$', 'i'),
  }));
  templates.sort((a, b) => Number(b.literal) - Number(a.literal));

  function responseFor(res: SeenResponse, path: string, out: string[]): [Json, string[]] | null {
    const match = templates.find((t) => t.re.test(path));
    const method = res.method.toLowerCase() === 'head' ? 'get' : res.method.toLowerCase();
    const op = match ? (doc.paths[match.tpl] as Json)[method] : undefined;
    if (!match || !op) {
      // The contract's answers for what the document has no operation for.
      // A request the HTTP parser refuses (an unknown method, a broken request line) never
      // reaches the router: the contract's 400 for a malformed request.
      if (res.status === 400) return deref({ $ref: '#/components/responses/InvalidRequest' }, []);
      // OPTIONS on a known path: the router lists the methods (200, Allow, no body), as HTTP does.
      if (match && res.method.toUpperCase() === 'OPTIONS' && res.status === 200) {
        if (headerOf(res.headers, 'Allow') === undefined) out.push('OPTIONS without Allow');
        return null;
      }
      const [name, status] = match ? ['MethodNotAllowed', 405] : ['NotFound', 404];
      if (res.status !== status) {
        out.push(
          `${res.method} ${path}: no such operation, so ${status} expected, got ${res.status}`,
        );
        return null;
      }
      return deref({ $ref: `#/components/responses/${name}` }, []);
    }
    const tokens = ['paths', match.tpl, method, 'responses'];
    const responses = op.responses as Json;
    const key = [String(res.status), `${String(res.status)[0]}XX`, 'default'].find(
      (k) => k in responses,
    );
    if (!key) {
      out.push(`${res.method} ${match.tpl}: status ${res.status} is not documented`);
      return null;
    }
    return deref(responses[key] as Json, [...tokens, key]);
  }

  function checkHeaders(res: SeenResponse, response: Json, at: string[], out: string[]): void {
    for (const [name, h] of Object.entries((response.headers ?? {}) as Json)) {
      const [header, hAt] = deref(h as Json, [...at, 'headers', name]);
      const value = headerOf(res.headers, name);
      if (value === undefined) {
        if (header.required) out.push(`header ${name} is required and missing`);
        continue;
      }
      // Header values are text: an integer schema (Retry-After) reads decimal digits.
      const schema = header.schema as Json;
      const typed = schema.type === 'integer' && /^-?\d+$/.test(value) ? Number(value) : value;
      const v = validator([...hAt, 'schema']);
      if (!v(typed))
        out.push(`header ${name}: ${JSON.stringify(value)} ${ajv.errorsText(v.errors)}`);
    }
  }

  function checkBody(res: SeenResponse, response: Json, at: string[], out: string[]): void {
    const content = response.content as Json | undefined;
    if (res.method.toUpperCase() === 'HEAD' || !content) {
      if (!content && res.text !== '') out.push('a body where the document has none');
      return;
    }
    const type = headerOf(res.headers, 'content-type') ?? '';
    const mime = type.split(';')[0]!.trim().toLowerCase();
    if (!(mime in content)) {
      out.push(
        `content-type ${JSON.stringify(type)}, documented: ${Object.keys(content).join(', ')}`,
      );
      return;
    }
    if (mime === 'application/json' && !/charset=utf-8/i.test(type)) {
      out.push(`content-type ${JSON.stringify(type)} lacks charset=utf-8`);
    }
    let body: unknown = res.text;
    if (mime === 'application/json') {
      try {
        body = JSON.parse(res.text);
      } catch {
        out.push(`body is not JSON: ${res.text.slice(0, 200)}`);
        return;
      }
    }
    const v = validator([...at, 'content', mime, 'schema']);
    if (!v(body)) out.push(ajv.errorsText(v.errors, { dataVar: 'body' }));
  }

  function schemaPaths(node: unknown, at: string[], out: string[][]): string[][] {
    if (node === null || typeof node !== 'object') return out;
    for (const [k, v] of Object.entries(node as Json)) {
      if (k === 'schema' || (at.length === 2 && at[1] === 'schemas')) out.push([...at, k]);
      else schemaPaths(v, [...at, k], out);
    }
    return out;
  }

  return {
    compileAll() {
      const all = schemaPaths(doc, [], []);
      for (const tokens of all) validator(tokens);
      return all.length;
    },
    violations(res) {
      // The router matches a path with or without one trailing slash, as the server does.
      const path = res.path.split('?')[0]!.replace(/(.)\/$/, '$1');
      if (TEST_ONLY.test(path)) return [];
      // 100 Continue is an interim answer; the final one follows and is checked.
      if (res.status >= 100 && res.status < 200) return [];
      const out: string[] = [];
      const found = responseFor(res, path, out);
      if (found) {
        const [response, at] = found;
        checkHeaders(res, response, at, out);
        checkBody(res, response, at, out);
      }
      return out.map((v) => `${res.method} ${path} -> ${res.status}: ${v}`);
    },
  };
}

let shared: ContractChecker | undefined;

/**
 * The checker for docs/openapi.json, built and compiled whole on first use: compiling takes
 * about a second, a pause the in-process server would share if it came in the middle of a
 * concurrent test (`useWorker` calls this before the file's first test).
 */
export function contract(): ContractChecker {
  if (!shared) {
    shared = createContractChecker(JSON.parse(readFileSync(OPENAPI_FILE, 'utf8')) as Json);
    shared.compileAll();
  }
  return shared;
}

/** Throws, listing every violation, when the response does not keep docs/openapi.json. */
export function expectContract(res: SeenResponse): void {
  const found = contract().violations(res);
  if (found.length > 0) {
    throw new Error(`response breaks docs/openapi.json:\n  ${found.join('\n  ')}`);
  }
}

/** fetch() whose answer is checked by `expectContract`; the body is read as text. */
export async function fetchChecked(
  url: string,
  init: RequestInit = {},
): Promise<SeenResponse & { headers: Headers }> {
  const res = await fetch(url, init);
  const seen = {
    method: init.method ?? 'GET',
    path: new URL(url).pathname,
    status: res.status,
    headers: res.headers,
    text: await res.text(),
  };
  expectContract(seen);
  return seen;
}
