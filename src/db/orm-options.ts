import { fileURLToPath } from 'node:url';
import { defineConfig, type Options } from '@mikro-orm/postgresql';
import { ReflectMetadataProvider } from '@mikro-orm/decorators/legacy';
import pg from 'pg';
import type { Config } from '../config/config.js';
import type { Logger } from '../observability/logger.js';
import { connectionSettings } from './connection-settings.js';
import { releaseDeadClients } from './driver/pool-guard.js';
import { timedClient } from './driver/timed-client.js';
import { ResilientDriver } from './driver/resilient-driver.js';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations', import.meta.url));
export const SEEDERS_DIR = fileURLToPath(new URL('../seeders', import.meta.url));
const SQL_LEVELS = new Set(['debug', 'trace']);
/** How long past the statement timeout a query may go unanswered before its connection is given up. */
const QUERY_GRACE_MS = 2000;

/**
 * Every new direct connection gets the statement timeout, and the same idle-in-transaction timeout, sent as
 * statements since poolers reject start-up
 * parameters. Behind a transaction-mode pooler a session setting would land on whichever server connection ran
 * it and stay there for other clients: it is not sent; set it on the role there (docs/operations.md), and the
 * client-side deadline (driver/timed-client.ts) still bounds every query. pg-pool awaits this hook before it hands the connection
 * out, so the setting is in place before the first query (and no query is queued behind it: pg 9 refuses that).
 */
function sessionSetup(statementTimeoutMs: number, logger: Logger, pooled: boolean): (client: pg.ClientBase) => Promise<void> {
  // A transaction of ours left idle that long is stuck: it would hold every subscriber's changes back (task.changes.ts).
  const statements =
    statementTimeoutMs > 0 && !pooled
      ? [`set statement_timeout = ${statementTimeoutMs}`, `set idle_in_transaction_session_timeout = ${statementTimeoutMs}`]
      : [];
  return async (client) => {
    for (const sql of statements) {
      await client.query(sql).catch((error: unknown) => logger.warn({ err: error }, 'could not apply session setting'));
    }
  };
}

/** The pool's own failures: an idle connection's is logged, a dead client is never handed out again. */
function watchPool(pool: pg.Pool, logger: Logger): void {
  pool.on('error', (error) => logger.warn({ err: error }, 'idle database connection failed'));
  releaseDeadClients(pool);
}

/**
 * The one MikroORM configuration, shared by the server, the tests and the CLI. Every pool and timeout setting
 * reaches the real `pg.Pool` through `driverOptions`. For migrations (`purpose: 'migrations'`) there is no
 * statement timeout and no client-side deadline: a long index build must not fail at 15 s and leave every pod
 * crash-looping on a half-applied deploy.
 */
export function ormOptions(
  config: Config,
  databaseUrl: string,
  logger: Logger,
  { purpose = 'requests', entities = [] }: { purpose?: 'requests' | 'migrations'; entities?: Options['entities'] } = {},
): Options {
  const settings = connectionSettings(databaseUrl);
  const migrations = purpose === 'migrations';
  const { connectTimeoutMs } = config.db;
  const statementTimeoutMs = migrations ? 0 : config.db.statementTimeoutMs;
  const queryDeadlineMs = migrations ? undefined : (statementTimeoutMs || 60_000) + QUERY_GRACE_MS;
  const pooled = databaseUrl !== (config.databaseDirectUrl ?? databaseUrl);
  return defineConfig({
    driver: ResilientDriver,
    clientUrl: databaseUrl,
    // The server, the CLI and the tests pass src/entities.ts; applying migrations needs none.
    entities,
    discovery: { warnWhenNoEntities: false },
    // Created by migrations and written with SQL alone: the rate limits by rate-limiter-flexible, the task change
    // log by the trigger on tasks (task.changes.ts); no entity maps them, nor the trigger.
    schemaGenerator: {
      skipTables: ['rate_limits', 'task_changes', 'task_change_pruned', 'sessions', 'refresh_tokens'],
      ignoreTriggers: true,
    },
    metadataProvider: ReflectMetadataProvider,
    forceUtcTimezone: true,
    ensureDatabase: false,
    pool: { min: config.db.min, max: config.db.max, idleTimeoutMillis: config.db.idleTimeoutMs },
    driverOptions: {
      Client: timedClient({ connectTimeoutMs, queryDeadlineMs, pooled, logger }),
      ssl: settings.ssl,
      enableChannelBinding: settings.enableChannelBinding,
      min: config.db.min,
      max: config.db.max,
      idleTimeoutMillis: config.db.idleTimeoutMs,
      connectionTimeoutMillis: config.db.acquireTimeoutMs,
      maxLifetimeSeconds: config.db.maxLifetimeS,
      keepAlive: true,
      application_name: 'todo-graphql-server',
      onConnect: sessionSetup(statementTimeoutMs, logger, pooled),
      onPoolCreated: (pool: pg.Pool) => watchPool(pool, logger),
    },
    migrations: {
      path: MIGRATIONS_DIR,
      pathTs: MIGRATIONS_DIR,
      glob: '!(*.d).{js,ts}',
      // Each migration in its own transaction, so that one may run outside any (an index built concurrently).
      transactional: true,
      allOrNothing: false,
      snapshot: false,
      emit: 'ts',
    },
    seeder: { path: SEEDERS_DIR, pathTs: SEEDERS_DIR, defaultSeeder: 'DatabaseSeeder', glob: '!(*.d).{js,ts}' },
    debug: SQL_LEVELS.has(config.logLevel) ? ['query'] : false,
    logger: (message) => logger.debug({ component: 'mikro-orm' }, message),
    colors: false,
  });
}
