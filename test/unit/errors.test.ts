/** The error catalogue against the contract's table (docs/api.md, "Errors"). */
import {
  AppError,
  ERRORS,
  errorBody,
  refusalError,
  UnavailableError,
  type ErrorCode,
  type ErrorSpec,
  type Refusal,
} from '../../src/errors';

test("every code answers the contract's status, and every 503 carries Retry-After", () => {
  const contract: Record<ErrorCode, number> = {
    invalid_request: 400,
    unauthorized: 401,
    not_found: 404,
    method_not_allowed: 405,
    request_timeout: 408,
    insufficient_funds: 409,
    payload_too_large: 413,
    unsupported_media_type: 415,
    idempotency_key_reused: 422,
    client_closed_request: 499,
    internal: 500,
    database_unavailable: 503,
    outcome_unknown: 503,
    shutting_down: 503,
  };
  for (const code of Object.keys(contract) as ErrorCode[]) {
    const err = new AppError(code);
    expect([code, err.status]).toEqual([code, contract[code]]);
    if (err.status === 503) expect(err.headers['Retry-After']).toMatch(/^[1-9]\d*$/);
  }
  expect(new AppError('request_timeout').headers).toEqual({ Connection: 'close' });
  expect(Object.keys(ERRORS).sort()).toEqual(Object.keys(contract).sort());
});

test('a catalogue without an entry for every code does not compile', () => {
  // @ts-expect-error: `shutting_down` and the others are missing
  const partial: { [K in ErrorCode]: ErrorSpec } = { invalid_request: ERRORS.invalid_request };
  expect(partial).toBeDefined();
});

test('the serializer shows exposed messages and details, never an internal message', () => {
  expect(errorBody(new AppError('not_found', 'account 3 not found'))).toEqual({
    error: { code: 'not_found', message: 'account 3 not found' },
  });
  expect(errorBody(new AppError('invalid_request', 'bad', { details: [{ path: 'x' }] }))).toEqual({
    error: { code: 'invalid_request', message: 'bad', details: [{ path: 'x' }] },
  });
  expect(errorBody(new AppError('internal', 'the pool is broken'))).toEqual({
    error: { code: 'internal', message: 'internal error' },
  });
});

test('named decisions: a request past its deadline is database_unavailable, Retry-After 1', () => {
  const late = UnavailableError.of('requestDeadline');
  expect([late.status, late.code, late.message, late.headers]).toEqual([
    503,
    'database_unavailable',
    'the request did not complete in time',
    { 'Retry-After': '1' },
  ]);
  expect(UnavailableError.of('dbNotMigrated').headers).toEqual({ 'Retry-After': '2' });
});

test('each refusal of the ledger has its contract answer', () => {
  const cases: Array<[Refusal, number, string, string]> = [
    [{ kind: 'account_not_found', account: 4 }, 404, 'not_found', 'account 4 not found'],
    [{ kind: 'transfer_not_found', transfer: 5 }, 404, 'not_found', 'transfer 5 not found'],
    [
      { kind: 'insufficient_funds', account: 6 },
      409,
      'insufficient_funds',
      'account 6 has insufficient funds',
    ],
    [
      { kind: 'balance_limit', account: 7, max: 10 },
      400,
      'invalid_request',
      'account 7 cannot hold more than 10',
    ],
    [
      { kind: 'key_reused' },
      422,
      'idempotency_key_reused',
      'this Idempotency-Key was used with a different request body',
    ],
  ];
  for (const [refusal, status, code, message] of cases) {
    const err = refusalError(refusal);
    expect({ status: err.status, body: errorBody(err) }).toEqual({
      status,
      body: { error: { code, message } },
    });
  }
});
