import type { ExtraRoutes } from '../../src/http/app';

/** ./test-routes.js: /__test/slow, /__test/crash and /__test/whoami. */
export declare const testOnlyRoutes: ExtraRoutes;
