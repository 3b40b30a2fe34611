import { join } from 'node:path';
import { PROJECT_ROOT } from '../config/app-version.js';
import type { Config } from '../config/config.js';
import type { Logger } from '../observability/logger.js';

export interface DatabaseTarget {
  /** The URL the server's pool uses (a pooler on Neon). */
  url: string;
  /** The unpooled URL migrations use. */
  directUrl: string;
  /** Stops the embedded server when this process started one. */
  stop(): void;
}

/**
 * `DATABASE_URL` when set; otherwise (never in production) the embedded PostgreSQL under `.data/`, whose code is
 * loaded only then.
 */
export async function resolveDatabase(
  config: Pick<Config, 'databaseUrl' | 'databaseDirectUrl'>,
  logger: Logger,
  dataDir = join(PROJECT_ROOT, '.data'),
): Promise<DatabaseTarget> {
  if (config.databaseUrl) {
    return { url: config.databaseUrl, directUrl: config.databaseDirectUrl ?? config.databaseUrl, stop: () => undefined };
  }
  const { startDevelopmentDatabase } = await import('../embedded/embedded.js');
  const { url, stop } = await startDevelopmentDatabase(dataDir, logger);
  return { url, directUrl: url, stop };
}
