'use strict';
/**
 * The `web` worker of ./ecosystem.config.js: the production entry plus the test-only routes.
 * KEEL_TEST_DIST: another build's dist/ (a second release, test/support/release.ts).
 */
const path = require('node:path');
const dist = process.env.KEEL_TEST_DIST || path.join(__dirname, '..', '..', 'dist');
const { main } = require(path.join(dist, 'main.js'));
const { testOnlyRoutes } = require('./test-routes.js');

void main(process.env, { routes: [testOnlyRoutes] });
