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

/** Exits once the log lines written so far have reached their destination. */
function exitAfterLogs(code: number): void {
  setTimeout(() => process.exit(code), 1000).unref();
  logger.flush(() => process.exit(code));
}

let database: DatabaseTarget | undefined;
let server: RunningServer;

try {
  database = await resolveDatabase(config, logger);
  server = await startServer({ config, logger, database });
} catch (error) {
  logger.fatal({ err: error }, `start-up failed: ${(error as Error).message}`);
  database?.stop();
  exitAfterLogs(1);
  await new Promise(() => undefined);
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
    exitAfterLogs(0);
  } catch (error) {
    logger.fatal({ err: error }, 'shutdown failed');
    exitAfterLogs(1);
  }
}
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
