import 'reflect-metadata';
import { ConfigError, loadConfig, type Config } from './config/config.js';
import { resolveDatabase } from './db/embedded.js';
import { createLogger } from './observability/logger.js';
import { startServer } from './server.js';

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
const database = await resolveDatabase(config, logger);

try {
  const server = await startServer({ config, logger, database });

  let stopping = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    try {
      await server.stop();
      database.stop();
      logger.info('stopped');
      logger.flush();
      process.exit(0);
    } catch (error) {
      logger.fatal({ err: error }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
} catch (error) {
  logger.fatal({ err: error }, `start-up failed: ${(error as Error).message}`);
  database.stop();
  logger.flush();
  process.exit(1);
}
