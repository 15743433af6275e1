/**
 * What Node's HTTP server enforces before Koa sees a request: how long headers and the whole
 * request may take to arrive, and how many connections a worker holds. A request that does not
 * arrive in time is answered with the contract's `408 request_timeout` (JSON, `Connection:
 * close`) and its socket closed, instead of Node's bare text answer.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { AppError, errorBody } from '../errors';

export interface ServerLimits {
  keepAliveTimeoutMs: number;
  headersTimeoutMs: number;
  requestReceiveTimeoutMs: number;
  maxConnections: number;
}

// Marks a socket whose request the server answered 408 itself (see `timedOutByServer`).
const TIMED_OUT = Symbol('keel.requestTimedOut');

/**
 * Whether this socket's request was cut off by the receive timeout and answered 408 here: the
 * route reading its body then records a 408, not a client that went away (499).
 */
export function timedOutByServer(socket: net.Socket | null): boolean {
  return (socket as { [TIMED_OUT]?: boolean } | null)?.[TIMED_OUT] === true;
}

// After the 408 is written, the socket is destroyed at the latest this much later (a client
// that stops reading must not keep it open).
const CLOSE_GRACE_MS = 1000;

/** Options for `http.createServer`: the timers are checked at a quarter of the shorter one. */
export function serverOptions(limits: ServerLimits): http.ServerOptions {
  const shortest = Math.min(limits.headersTimeoutMs, limits.requestReceiveTimeoutMs);
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestReceiveTimeoutMs,
    // Node checks both timers on this interval (default 30 s): a quarter of the shorter timer
    // closes a stalled request within 1.25x its timeout.
    connectionsCheckingInterval: Math.max(25, Math.min(30_000, Math.floor(shortest / 4))),
    keepAliveTimeout: limits.keepAliveTimeoutMs,
  };
}

function answer(error: AppError): string {
  const body = JSON.stringify(errorBody(error));
  return (
    `HTTP/1.1 ${error.status} ${http.STATUS_CODES[error.status]}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    `X-Request-Id: ${randomUUID()}\r\n` +
    'Connection: close\r\n\r\n' +
    body
  );
}

function replyFor(code: string | undefined): string | null {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return answer(new AppError('request_timeout'));
  }
  // Headers over Node's limit are malformed input to the contract, which has no 431: a JSON 400
  // with X-Request-Id like every answer (nginx answers 400 here too), not Node's bare 431.
  if (code === 'HPE_HEADER_OVERFLOW') {
    return answer(
      new AppError(
        'invalid_request',
        `the request's headers are larger than ${http.maxHeaderSize} bytes`,
      ),
    );
  }
  if (code?.startsWith('HPE_')) {
    // Other parse errors: the JSON 400.
    return answer(new AppError('invalid_request', 'the request is not valid HTTP'));
  }
  return null; // a reset or timed-out peer: nobody to answer
}

/** Applies the limits and answers the server's client errors per the contract. */
export function applyServerLimits(server: http.Server, limits: ServerLimits): void {
  server.maxConnections = limits.maxConnections;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestReceiveTimeoutMs;
  server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    const current = (socket as { _httpMessage?: http.ServerResponse })._httpMessage;
    const canAnswer = socket.writable && !current?.headersSent;
    const reply = canAnswer ? replyFor(err.code) : null;
    if (reply === null) {
      socket.destroy();
      return;
    }
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      (socket as net.Socket & { [TIMED_OUT]?: boolean })[TIMED_OUT] = true;
    }
    const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
    timer.unref();
    socket.end(reply, () => {
      clearTimeout(timer);
      socket.destroy();
    });
  });
}
