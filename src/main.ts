import 'reflect-metadata';
import { ConfigError, loadConfig, type Config } from './config/config.js';
import type { DatabaseTarget } from './db/database-target.js';
import { createLogger } from './observability/logger.js';
import { startTracing } from './observability/tracing.js';
import type { RunningServer } from './server.js';

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

// Tracing before the rest is imported: the hooks that patch http, express, graphql and pg must be in place first.
const tracing = await startTracing();
if (tracing.on) logger.info('exporting traces over OTLP');
else if (tracing.off !== 'no OTLP endpoint is set') logger.warn(`${tracing.off}: tracing is off`);
const { resolveDatabase } = await import('./db/database-target.js');
const { startServer } = tracing.on ? await importTraceable() : await import('./server.js');

/**
 * The server with express, pg and graphql left for Node to load, so that OpenTelemetry's hooks patch them as they
 * load. The production build bundles them into this entry's own copy of the server, and makes tsc's `server.js` a
 * second bundle that leaves them out (scripts/build.ts). A specifier held in a variable is one the bundler leaves
 * alone: this import finds that `server.js` beside the entry's bundle, and, under `npm start`, `server.ts`.
 */
function importTraceable(): Promise<typeof import('./server.js')> {
  const modules = './server.js';
  return import(modules) as Promise<typeof import('./server.js')>;
}

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

/** Past the drain's grace period, closing the pool and the embedded database gets this long before exit 1. */
const CLOSE_MS = 5000;
/** Of CLOSE_MS, what exporting the last spans may take; a collector that does not answer costs those spans only. */
const TRACES_FLUSH_MS = 2000;

let stopping = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  // A second signal (an impatient operator, or the orchestrator repeating itself) must not cut the drain short.
  if (stopping) return void logger.info({ signal }, 'already shutting down');
  stopping = true;
  logger.info({ signal }, 'shutting down: finishing in-flight requests');
  setTimeout(() => {
    logger.fatal({ signal }, `shutdown did not finish within ${config.shutdownGraceMs + CLOSE_MS} ms`);
    exitAfterLogs(1);
  }, config.shutdownGraceMs + CLOSE_MS).unref();
  try {
    await server.stop();
    database?.stop();
    if (!(await tracing.flush(TRACES_FLUSH_MS))) logger.warn('traces not all exported at shutdown');
    logger.info('stopped');
    exitAfterLogs(0);
  } catch (error) {
    logger.fatal({ err: error }, 'shutdown failed');
    exitAfterLogs(1);
  }
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
