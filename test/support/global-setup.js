// Runs in jest's parent process, outside its transform: the swc loader lets it import the TypeScript sources.
import '@swc-node/register/esm-register';
import { join } from 'node:path';

/** One embedded PostgreSQL for the whole run, unless TEST_DATABASE_URL names a server to use instead. */
export default async function globalSetup() {
  if (process.env.TEST_DATABASE_URL) return;
  const { PROJECT_ROOT } = await import('../../src/config/app-version.js');
  const { startEmbeddedPostgres } = await import('../../src/db/embedded.js');
  const { createLogger } = await import('../../src/observability/logger.js');
  const embedded = await startEmbeddedPostgres({
    dataDir: join(PROJECT_ROOT, '.data', `test-${process.pid}`),
    logger: createLogger({ env: 'test', logLevel: 'warn' }),
    ephemeral: true,
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: '300' },
  });
  process.env.TEST_DATABASE_URL = embedded.urlFor('postgres');
  globalThis.stopTestDatabase = () => embedded.stop();
}
