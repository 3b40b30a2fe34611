// Runs in jest's parent process, outside its transform: the swc loader lets it import the TypeScript sources.
import '@swc-node/register/esm-register';
import { join } from 'node:path';

/**
 * One embedded PostgreSQL for the whole run, unless TEST_DATABASE_URL names a server to use instead; with
 * TEST_PGBOUNCER=1, a PgBouncer in transaction mode in front of it, which the servers under test then use.
 */
export default async function globalSetup() {
  const { PROJECT_ROOT } = await import('../../src/config/app-version.js');
  const { TestPostgres, startPgBouncer } = await import('./postgres.js');
  const stops = [];
  if (!process.env.TEST_DATABASE_URL) {
    const postgres = await TestPostgres.start({
      dataDir: join(PROJECT_ROOT, '.data', `test-${process.pid}`),
      ephemeral: true,
      settings: { max_connections: '300' },
    });
    process.env.TEST_DATABASE_URL = postgres.url;
    stops.push(() => postgres.destroy());
  }
  if (process.env.TEST_PGBOUNCER === '1') {
    const bouncer = await startPgBouncer(process.env.TEST_DATABASE_URL);
    process.env.TEST_POOLER_PORT = String(bouncer.port);
    stops.unshift(() => bouncer.stop());
  }
  globalThis.stopTestDatabase = () => stops.forEach((stop) => stop());
}
