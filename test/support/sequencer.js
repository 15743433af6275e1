'use strict';
/**
 * Jest's own order (files that failed last time, then the slowest known, then the biggest), with
 * the deploy tier's files first: they spend minutes on image builds and containers, so in a run
 * where they share workers with other files (`jest --selectProjects integration deploy`) they
 * must not start last.
 */
const Sequencer = require('@jest/test-sequencer').default;

const isDeploy = (test) => /[/\\]test[/\\]integration[/\\]deploy([/\\-])/.test(test.path);

class DeployFirst extends Sequencer {
  sort(tests) {
    const sorted = super.sort(tests);
    return [...sorted.filter(isDeploy), ...sorted.filter((t) => !isDeploy(t))];
  }
}

module.exports = DeployFirst;
