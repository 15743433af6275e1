'use strict';
/**
 * A Jest reporter that appends one line per test file, `seconds<TAB>file<TAB>project`, to the
 * file KEEL_TEST_DURATIONS names (nothing when unset). .ci/run prints the ten slowest.
 */
const fs = require('node:fs');
const path = require('node:path');

class DurationsReporter {
  constructor(globalConfig) {
    this.rootDir = globalConfig.rootDir;
  }

  onTestResult(test, result) {
    const out = process.env.KEEL_TEST_DURATIONS;
    if (!out) return;
    const seconds = ((result.perfStats.end - result.perfStats.start) / 1000).toFixed(1);
    const file = path.relative(this.rootDir, result.testFilePath);
    const project = test.context.config.displayName?.name ?? '';
    fs.appendFileSync(out, `${seconds}\t${file}\t${project}\n`);
  }
}

module.exports = DurationsReporter;
