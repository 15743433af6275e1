'use strict';
/** The `web` worker of ./ecosystem.config.js: the production entry plus the test-only routes. */
const path = require('node:path');
const { main } = require(path.join(__dirname, '..', '..', 'dist', 'main.js'));
const { testOnlyRoutes } = require('./test-routes.js');

void main(process.env, { routes: [testOnlyRoutes] });
