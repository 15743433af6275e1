/** What the middleware chain puts on `ctx.state` for the routes. */
import type { ParameterizedContext } from 'koa';
import type { WorkContext } from '../db/runner';

export interface KeelState {
  reqId: string;
  /** Deadline, abort signal and request id for database work. */
  work: WorkContext;
}

export type KeelContext = ParameterizedContext<KeelState>;
