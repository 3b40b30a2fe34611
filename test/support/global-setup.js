// Runs in jest's parent process, outside its transform: the swc loader lets it import the TypeScript sources.
import '@swc-node/register/esm-register';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPgBouncer } from './pgbouncer.js';

/**
 * One embedded PostgreSQL for the whole run, unless TEST_DATABASE_URL names a server to use instead; with
 * TEST_PGBOUNCER=1, a PgBouncer in transaction mode in front of it, which the servers under test then use.
 */
export default async function globalSetup() {
  const { PROJECT_ROOT } = await import('../../src/config/app-version.js');
  const { freePort, serverUser, startEmbeddedPostgres } = await import('../../src/embedded/embedded.js');
  const { createLogger } = await import('../../src/observability/logger.js');
  const dataDir = join(PROJECT_ROOT, '.data', `test-${process.pid}`);
  const stops = [];
  if (!process.env.TEST_DATABASE_URL) {
    const embedded = await startEmbeddedPostgres({
      dataDir,
      logger: createLogger({ env: 'test', logLevel: 'warn' }),
      ephemeral: true,
      settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: '300' },
    });
    process.env.TEST_DATABASE_URL = embedded.urlFor('postgres');
    stops.push(() => embedded.stop());
  }
  if (process.env.TEST_PGBOUNCER === '1') {
    const port = await freePort();
    // Outside the project: as root PgBouncer runs as `postgres`, who may not enter the project's folder.
    const dir = mkdtempSync(join(tmpdir(), 'todo-pgbouncer-'));
    chmodSync(dir, 0o755);
    const bouncer = await startPgBouncer({ dir: join(dir, 'pgbouncer'), target: process.env.TEST_DATABASE_URL, port, user: serverUser() });
    process.env.TEST_POOLER_PORT = String(port);
    stops.unshift(() => {
      bouncer.stop();
      rmSync(dir, { recursive: true, force: true });
    });
  }
  globalThis.stopTestDatabase = () => stops.forEach((stop) => stop());
}
