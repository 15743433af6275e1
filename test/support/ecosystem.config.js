'use strict';
/**
 * The real ecosystem.config.js, with one change: `web` starts from ./pm2-worker.js, which mounts
 * the test-only routes (they are not in the production build).
 */
const path = require('node:path');
const ecosystem = require('../../ecosystem.config.js');

for (const app of ecosystem.apps) {
  if (app.name === 'web') app.script = path.join(__dirname, 'pm2-worker.js');
}
module.exports = ecosystem;
