/** What the middleware chain puts on `ctx.state` for the routes. */
import type { ParameterizedContext } from 'koa';
import type { WorkContext } from '../db/runner';

export interface KeelState {
  reqId: string;
  /** Deadline, abort signal and request id for database work. */
  work: WorkContext;
  /**
   * Runs the read of the request body outside the deadline: its clock stops while the body
   * arrives (the server's receive timeout bounds that) and starts afresh when it has.
   */
  receive<T>(read: () => Promise<T>): Promise<T>;
}

export type KeelContext = ParameterizedContext<KeelState>;
