/**
 * The error catalogue: every code a client can read (the contract's table, docs/api.md)
 * with its status, default message, exposure and headers, and the one serializer of error bodies.
 * A code without an entry, or a refusal without its answer, does not compile.
 */

export type ErrorCode =
  | 'invalid_request'
  | 'unauthorized'
  | 'not_found'
  | 'method_not_allowed'
  | 'request_timeout'
  | 'insufficient_funds'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'idempotency_key_reused'
  | 'client_closed_request'
  | 'internal'
  | 'database_unavailable'
  | 'outcome_unknown'
  | 'shutting_down';

export interface ErrorSpec {
  readonly status: number;
  /** What the client reads when the thrower gives no message of its own. */
  readonly message: string;
  /** Whether the thrower's message may reach the client; if not, it reads `message`. */
  readonly expose: boolean;
  /** Headers every answer with this code carries. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Default `Retry-After` in seconds: the 503s always carry one. */
  readonly retryAfterS?: number;
  /** False: nobody is left to read the answer; it is logged with its status and has no body. */
  readonly answered?: false;
}

export const ERRORS = {
  invalid_request: { status: 400, message: 'invalid request', expose: true },
  // /metrics with METRICS_TOKEN set (not in the contract's table: an operator's endpoint).
  unauthorized: {
    status: 401,
    message: 'a valid bearer token is required for /metrics',
    expose: true,
    headers: { 'WWW-Authenticate': 'Bearer' },
  },
  not_found: { status: 404, message: 'not found', expose: true },
  method_not_allowed: { status: 405, message: 'method not allowed', expose: true },
  // Written on the socket by ./http/server-limits (the headers or body did not arrive in time);
  // a route that was reading that body then records the same code (./http/body).
  request_timeout: {
    status: 408,
    message: 'the request did not arrive in time',
    expose: true,
    headers: { Connection: 'close' },
  },
  insufficient_funds: { status: 409, message: 'insufficient funds', expose: true },
  payload_too_large: { status: 413, message: 'the request body is too large', expose: true },
  unsupported_media_type: {
    status: 415,
    message: 'the request body must be JSON (Content-Type: application/json)',
    expose: true,
  },
  idempotency_key_reused: {
    status: 422,
    message: 'this Idempotency-Key was used with a different request body',
    expose: true,
  },
  // nginx's code for a client that left before the answer: nobody reads it.
  client_closed_request: {
    status: 499,
    message: 'the client went away',
    expose: false,
    answered: false,
  },
  // Logged with the request id; the client never sees what went wrong.
  internal: { status: 500, message: 'internal error', expose: false },
  // For a write: not applied, and never will be (the runner makes that true).
  database_unavailable: {
    status: 503,
    message: 'the database is unavailable, retry later',
    expose: true,
    retryAfterS: 2,
  },
  outcome_unknown: {
    status: 503,
    message:
      'the transfer may or may not have been applied: retry with its Idempotency-Key to learn which',
    expose: true,
    retryAfterS: 1,
  },
  // The pool has ended (this worker is going away); while draining, ./http/middleware/drain adds
  // `Connection: close` to every answer, this one included.
  shutting_down: {
    status: 503,
    message: 'this worker is shutting down, retry',
    expose: true,
    retryAfterS: 1,
  },
} as const satisfies { readonly [K in ErrorCode]: ErrorSpec };

/**
 * Named decisions: situations that share a code but not its message or Retry-After. A request
 * that runs out of time has no code of its own in the contract: it answers database_unavailable,
 * which for a write says what the client needs to know (not applied, retry).
 */
export const SITUATIONS = {
  dbOverloaded: {
    code: 'database_unavailable',
    message: 'the database is overloaded, retry',
    retryAfterS: 1,
  },
  dbNotMigrated: {
    code: 'database_unavailable',
    message: 'the database is not reachable yet',
    retryAfterS: 2,
  },
  // Its statements kept waiting for locks (a schema change, a long transaction) past the budget.
  dbLockWait: {
    code: 'database_unavailable',
    message: 'the data is locked by another session (a schema change?), retry',
    retryAfterS: 1,
  },
  requestDeadline: {
    code: 'database_unavailable',
    message: 'the request did not complete in time',
    retryAfterS: 1,
  },
} as const satisfies Record<string, { code: ErrorCode; message: string; retryAfterS?: number }>;

export type Situation = keyof typeof SITUATIONS;

export interface AppErrorOptions {
  details?: unknown;
  cause?: unknown;
  headers?: Record<string, string>;
  /** Overrides the code's default Retry-After (503s). */
  retryAfterS?: number;
}

export class AppError extends Error {
  readonly status: number;
  /** Whether `message` may be shown to the client. */
  readonly expose: boolean;
  readonly details: unknown;
  readonly headers: Record<string, string>;
  constructor(
    readonly code: ErrorCode,
    message: string = ERRORS[code].message,
    options: AppErrorOptions = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'AppError';
    const spec: ErrorSpec = ERRORS[code];
    this.status = spec.status;
    this.expose = spec.expose;
    this.details = options.details;
    const retryAfterS = options.retryAfterS ?? spec.retryAfterS;
    this.headers = {
      ...spec.headers,
      ...(retryAfterS === undefined
        ? {}
        : { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterS))) }),
      ...options.headers,
    };
  }

  /** Whether anyone will read the answer (see `answered` in the catalogue). */
  get answered(): boolean {
    return (ERRORS[this.code] as ErrorSpec).answered !== false;
  }
}

export class ValidationError extends AppError {
  constructor(message: string, details?: unknown) {
    super('invalid_request', message, { details });
  }
}

/** A 503: the runner tells these from its other errors (a deadline, an outage, an ending pool). */
export class UnavailableError extends AppError {
  /** The situation it answers, when it has one: logged as the 503's reason. */
  reason?: Situation;
  constructor(
    code: 'database_unavailable' | 'outcome_unknown' | 'shutting_down',
    message?: string,
    options: AppErrorOptions = {},
  ) {
    super(code, message, options);
  }

  static of(situation: Situation, cause?: unknown): UnavailableError {
    const s = SITUATIONS[situation];
    const err = new UnavailableError(s.code, s.message, { retryAfterS: s.retryAfterS, cause });
    err.reason = situation;
    return err;
  }
}

/** The client left before the answer (the request's signal fired, or its body was cut off). */
export class ClientGoneError extends AppError {
  constructor() {
    super('client_closed_request');
  }
}

/** What the ledger refuses; `refusalError` turns each into its contract answer. */
export type Refusal =
  | { kind: 'account_not_found'; account: number }
  | { kind: 'transfer_not_found'; transfer: number }
  | { kind: 'insufficient_funds'; account: number }
  /** The destination would pass the largest amount the API can express. */
  | { kind: 'balance_limit'; account: number; max: number }
  | { kind: 'key_reused' };

type RefusalAnswers = {
  readonly [K in Refusal['kind']]: (
    r: Extract<Refusal, { kind: K }>,
  ) => readonly [ErrorCode, string?];
};

const REFUSALS: RefusalAnswers = {
  account_not_found: (r) => ['not_found', `account ${r.account} not found`],
  transfer_not_found: (r) => ['not_found', `transfer ${r.transfer} not found`],
  insufficient_funds: (r) => ['insufficient_funds', `account ${r.account} has insufficient funds`],
  balance_limit: (r) => ['invalid_request', `account ${r.account} cannot hold more than ${r.max}`],
  key_reused: () => ['idempotency_key_reused'],
};

export function refusalError(refusal: Refusal): AppError {
  const answer = REFUSALS[refusal.kind] as (r: Refusal) => readonly [ErrorCode, string?];
  const [code, message] = answer(refusal);
  return new AppError(code, message);
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

/** The one serializer: every error body a client reads, stored replays included, is made here. */
export function errorBody(err: AppError): ErrorBody {
  const body: ErrorBody['error'] = {
    code: err.code,
    message: err.expose ? err.message : ERRORS[err.code].message,
  };
  if (err.details !== undefined) body.details = err.details;
  return { error: body };
}
