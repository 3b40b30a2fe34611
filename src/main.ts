import 'reflect-metadata';
import { ConfigError, loadConfig, type Config } from './config/config.js';
import { resolveDatabase, type DatabaseTarget } from './db/embedded.js';
import { createLogger } from './observability/logger.js';
import { startServer, type RunningServer } from './server.js';

function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}

const config = configOrExit();
const logger = createLogger(config);
let database: DatabaseTarget | undefined;
let server: RunningServer;

try {
  database = await resolveDatabase(config, logger);
  server = await startServer({ config, logger, database });
} catch (error) {
  logger.fatal({ err: error }, `start-up failed: ${(error as Error).message}`);
  database?.stop();
  logger.flush();
  process.exit(1);
}

let stopping = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down: finishing in-flight requests');
  try {
    await server.stop();
    database?.stop();
    logger.info('stopped');
    logger.flush();
    process.exit(0);
  } catch (error) {
    logger.fatal({ err: error }, 'shutdown failed');
    process.exit(1);
  }
}
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
