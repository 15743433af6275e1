/**
 * The test fixtures (throwaway Postgres, fault proxy, isolated PM2) are the one source of truth
 * for how the benchmark starts things too.
 */
import path from 'node:path';
import { ROOT } from '../test/support/paths';

export { freePort, psql, startTestPostgres } from '../test/support/postgres';
export { createFaultProxy } from '../test/support/fault-proxy';
export { createPm2 } from '../test/support/pm2';
export { ROOT };
/** Results, LATEST.md, the screenshot script and its PNG: the source tree's bench/ (the code runs from build/bench/). */
export const BENCH = path.join(ROOT, 'bench');
