/**
 * Whether a request is for the API (/api/...). @koa/router matches paths case-insensitively
 * (its default), so the checks in front of it must too: `GET /API/ACCOUNTS` is served by the
 * accounts route and answers like `GET /api/accounts`.
 */
export function isApiPath(path: string): boolean {
  return path.slice(0, 5).toLowerCase() === '/api/';
}
