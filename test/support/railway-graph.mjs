/**
 * Evaluates .railway/railway.ts as the Railway CLI does (Node strips the types, the default
 * export is called with a context and `project`), compiles the definition into the SDK's
 * RailwayGraph and runs the SDK's validateGraph on it. Prints one JSON object on stdout.
 *
 * The `railway` package (3.11) exports validateGraph and the graph types but not the compiler
 * (its engine moved into the CLI), so the compile step here is the graph's own definition:
 * every resource a node, every variable reference an edge. With `--dangling` it adds a
 * reference to a resource that does not exist, to show that validation can fail.
 */
import { createRequire } from 'node:module';
import process from 'node:process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as iac from 'railway/iac';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const mod = await import(path.join(root, '.railway', 'railway.ts'));
const ctx = iac.createRailwayContext({ environment: 'production', command: 'plan' });
const definition = await mod.default(ctx, iac.project);
const resources = definition.resources.flat();
if (process.argv.includes('--dangling')) {
  const keel = resources.find((r) => r.type === 'service');
  keel.variables = {
    ...keel.variables,
    BROKEN: { type: 'reference', resource: 'database.Nowhere', output: 'DATABASE_URL' },
  };
}
const edges = resources.flatMap((r) =>
  Object.entries(r.variables ?? {})
    .filter(([, v]) => v.type === 'reference')
    .map(([key, v]) => ({ from: r.address, to: v.resource, type: 'variable', key })),
);
const graph = {
  version: iac.RAILWAY_GRAPH_VERSION,
  project: { name: definition.name },
  environments: (definition.environments ?? ['production']).map((name) => ({ name })),
  resources,
  edges,
};
const errors = iac.validateGraph(graph);

// PM2's kill_timeout as ecosystem.config.js computes it from the service's own variables.
const literal = Object.fromEntries(
  resources
    .filter((r) => r.type === 'service')
    .flatMap((r) => Object.entries(r.variables ?? {}))
    .filter(([, v]) => v.type === 'literal')
    .map(([k, v]) => [k, v.value]),
);
Object.assign(process.env, literal, { DATABASE_URL: 'postgres://u:p@db.railway.internal/railway' });
const ecosystem = createRequire(import.meta.url)(path.join(root, 'ecosystem.config.js'));
const web = ecosystem.apps.find((a) => a.name === 'web');

process.stdout.write(
  JSON.stringify({
    graph,
    errors,
    exports: { ...mod, default: undefined },
    web: { kill_timeout: web.kill_timeout, instances: web.instances, apps: ecosystem.apps.length },
  }) + '\n',
);
