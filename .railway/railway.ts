/**
 * Keel on Railway as code: `railway config plan` shows the difference against the linked
 * environment, `railway config apply` makes it (Railway CLI >= 5.42.1; the engine is in the CLI,
 * the `railway` package only describes the project). Read deploy/railway/README.md first.
 *
 * Plain ESM with erasable types only: the CLI runs this file with `node --experimental-strip-types`
 * (.railway/package.json makes this folder ESM inside a CommonJS repo).
 */
import { defineRailway, empty, github, postgres, project, service } from 'railway/iac';

/** Replicas of the service. KEEL_REPLICAS below says the same to every worker's budget check:
 * Railway sets no variable with the replica count (only RAILWAY_REPLICA_ID / _REGION). */
export const REPLICAS = 2;
/** PM2 workers per replica (WEB_CONCURRENCY). Set it: a container's CPU count is the host's. */
export const WORKERS = 2;
/** Connections per worker (DB_POOL_MAX): 2 x 2 x 10 = 40 in steady state; the budget at boot
 * adds the deploy's overlap and the migrations (see deploy/railway/README.md). */
export const POOL_MAX = 10;
/** Keel's drain deadline (SHUTDOWN_TIMEOUT_MS, its default); PM2's kill_timeout is 5 s more. */
export const SHUTDOWN_TIMEOUT_MS = 10_000;
const KILL_TIMEOUT_S = SHUTDOWN_TIMEOUT_MS / 1000 + 5;
/** SIGTERM to SIGKILL: PM2's kill_timeout (15 s: the drain, pool close, log flush) + 5 s for
 * pm2-runtime to end its daemon. Railway's default is 0 s: SIGKILL would cut every drain. */
export const DRAINING_SECONDS = KILL_TIMEOUT_S + 5;
/** Old and new deployments both serve this long after the new one is healthy: a request routed
 * to the old one just before the switch finishes within REQUEST_TIMEOUT_MS (10 s) before
 * SIGTERM arrives. */
export const OVERLAP_SECONDS = 10;

export default defineRailway(() => {
  const db = postgres('Postgres');
  // A GitHub source when KEEL_RAILWAY_REPO=owner/name is set where `railway config` runs;
  // otherwise an empty service that `railway up` deploys from this checkout.
  const repo = process.env.KEEL_RAILWAY_REPO;
  const keel = service('keel', {
    source: repo ? github(repo) : empty(),
    // Railpack (the default builder) takes Node from package.json engines / .nvmrc and runs
    // `npm ci` (its postinstall applies patches/); the build compiles src/ to dist/.
    build: { builder: 'RAILPACK', buildCommand: 'npm run build' },
    // Runs once per deploy in its own container with the service's variables, before any new
    // replica starts: the schema is current when workers boot. Uses DATABASE_UNPOOLED_URL.
    preDeploy: 'node dist/cli/migrate.js',
    // No npm/npx between Railway's SIGTERM and pm2-runtime: it is the process that gets it.
    start: 'node_modules/.bin/pm2-runtime ecosystem.config.js',
    // Railway polls this only while a deploy goes live; 200 once migrated and the database answers.
    healthcheck: '/readyz',
    healthcheckTimeout: 120,
    replicas: REPLICAS,
    deploy: {
      drainingSeconds: DRAINING_SECONDS,
      overlapSeconds: OVERLAP_SECONDS,
      // A config error exits 78, PM2 does not restart it, pm2-runtime then exits 2: Railway
      // retries a few times, each with the same `keel: invalid configuration` line.
      restartPolicyType: 'ON_FAILURE',
      restartPolicyMaxRetries: 5,
    },
    env: {
      NODE_ENV: 'production',
      KEEL_REQUIRE_DATABASE_URL: '1',
      // IPv6 and IPv4: Railway's private network (keel.railway.internal, where Prometheus
      // scrapes each replica) is IPv6, which 0.0.0.0 does not listen on.
      HOST: '::',
      // Without the managed PgBouncer both are the direct URL. With it, DATABASE_URL is
      // PgBouncer's (and DB_PREPARE=false): see deploy/railway/README.md.
      DATABASE_URL: db.env.DATABASE_URL,
      DATABASE_UNPOOLED_URL: db.env.DATABASE_URL,
      WEB_CONCURRENCY: String(WORKERS),
      DB_POOL_MAX: String(POOL_MAX),
      KEEL_REPLICAS: String(REPLICAS),
      SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      // The same windows as deploy.* above, as the variables Railway documents; Keel's budget
      // check reads them to count old and new replicas side by side.
      RAILWAY_DEPLOYMENT_DRAINING_SECONDS: String(DRAINING_SECONDS),
      RAILWAY_DEPLOYMENT_OVERLAP_SECONDS: String(OVERLAP_SECONDS),
    },
  });
  return project('keel', { resources: [db, keel] });
});
