'use strict';
/**
 * The test fixtures (throwaway Postgres, fault proxy, isolated PM2) are the one source of truth
 * for how the benchmark starts things too. They are TypeScript and the build compiles only src/,
 * so this file loads them through a require hook that transpiles test/support/*.ts on the fly
 * (TypeScript's transpileModule: no type-check, no files written).
 */
const fs = require('node:fs');
const Module = require('node:module');
const path = require('node:path');
const ts = require('typescript');

const ROOT = path.resolve(__dirname, '..');
const SUPPORT = path.join(ROOT, 'test', 'support');

function registerSupportHook() {
  if (Module._extensions['.ts']) return;
  Module._extensions['.ts'] = (module, filename) => {
    if (!filename.startsWith(SUPPORT + path.sep)) {
      throw new Error(`bench loads only test/support/*.ts, not ${filename}`);
    }
    const { outputText } = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
      fileName: filename,
      compilerOptions: {
        module: ts.ModuleKind.CommonJS,
        target: ts.ScriptTarget.ES2022,
        esModuleInterop: true,
        inlineSourceMap: true,
      },
    });
    module._compile(outputText, filename);
  };
}

registerSupportHook();
const postgres = require(path.join(SUPPORT, 'postgres.ts'));
const faultProxy = require(path.join(SUPPORT, 'fault-proxy.ts'));
const pm2 = require(path.join(SUPPORT, 'pm2.ts'));

module.exports = {
  ROOT,
  startTestPostgres: postgres.startTestPostgres,
  psql: postgres.psql,
  freePort: postgres.freePort,
  createFaultProxy: faultProxy.createFaultProxy,
  createPm2: pm2.createPm2,
};
