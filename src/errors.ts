/** The application's error taxonomy: what the HTTP error middleware knows how to answer. */

export interface AppErrorOptions {
  details?: unknown;
  cause?: unknown;
  headers?: Record<string, string>;
}

export class AppError extends Error {
  readonly details: unknown;
  readonly headers: Record<string, string>;
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    options: AppErrorOptions = {},
    /** Whether `message` may be shown to the client (500s never are). */
    readonly expose = status < 500 || status === 503,
  ) {
    super(message, { cause: options.cause });
    this.name = 'AppError';
    this.details = options.details;
    this.headers = options.headers ?? {};
  }
}

export class ValidationError extends AppError {
  constructor(message: string, details?: unknown) {
    super(400, 'invalid_request', message, { details });
  }
}

export class NotFoundError extends AppError {
  constructor(message = 'not found') {
    super(404, 'not_found', message);
  }
}

export class ConflictError extends AppError {
  constructor(status: 409 | 422, code: string, message: string) {
    super(status, code, message);
  }
}

export class UnavailableError extends AppError {
  constructor(
    code: 'database_unavailable' | 'outcome_unknown' | 'shutting_down',
    message: string,
    retryAfterS = 1,
    cause?: unknown,
  ) {
    super(503, code, message, {
      cause,
      headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterS))) },
    });
  }
}
