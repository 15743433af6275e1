/** Jest globalTeardown of the integration projects: removes the run's shared server. */
import { SHARED_PG_ENV } from './postgres';
import { takeShared } from './shared-server';

export default async function globalTeardown(): Promise<void> {
  const pg = takeShared();
  if (!pg) return;
  delete process.env[SHARED_PG_ENV];
  await pg.destroy();
}
