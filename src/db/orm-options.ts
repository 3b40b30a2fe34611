import { fileURLToPath } from 'node:url';
import { defineConfig, type Options } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { SeedManager } from '@mikro-orm/seeder';
import { ReflectMetadataProvider } from '@mikro-orm/decorators/legacy';
import pg from 'pg';
import type { Config } from '../config/config.js';
import type { Logger } from '../observability/logger.js';
import { User } from '../modules/users/user.entity.js';
import { Task } from '../modules/tasks/task.entity.js';
import { connectionSettings } from './connection-settings.js';
import { releaseDeadClients } from './pool-guard.js';
import { isPoolerMismatch, statementName, stopNaming } from './prepared.js';
import { ResilientDriver } from './resilient-driver.js';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations', import.meta.url));
export const SEEDERS_DIR = fileURLToPath(new URL('../seeders', import.meta.url));
const SQL_LEVELS = new Set(['debug', 'trace']);
/** How long past the statement timeout a query may go unanswered before its connection is given up. */
const QUERY_GRACE_MS = 2000;

type Callback = (error: Error | null | undefined, result?: pg.QueryResult) => void;

/**
 * Every new direct connection gets the statement timeout, and the same idle-in-transaction timeout, sent as
 * statements since poolers reject start-up
 * parameters. Behind a transaction-mode pooler a session setting would land on whichever server connection ran
 * it and stay there for other clients: it is not sent; set it on the role there (see the README), and the
 * client-side deadline below still bounds every query. pg-pool awaits this hook before it hands the connection
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
export function ormOptions(config: Config, databaseUrl: string, logger: Logger, purpose: 'requests' | 'migrations' = 'requests'): Options {
  const settings = connectionSettings(databaseUrl);
  const migrations = purpose === 'migrations';
  const { connectTimeoutMs } = config.db;
  const statementTimeoutMs = migrations ? 0 : config.db.statementTimeoutMs;
  const queryDeadlineMs = migrations ? undefined : (statementTimeoutMs || 60_000) + QUERY_GRACE_MS;
  const pooled = databaseUrl !== (config.databaseDirectUrl ?? databaseUrl);
  // `pg` has one knob for two waits: the pool's `connectionTimeoutMillis` bounds the wait for a connection
  // (acquire), and each client gets the connect timeout for its own handshake. Start-up checks the database
  // with the connect timeout alone (see connect.ts), which also wakes a suspended Neon compute.
  class TimedClient extends pg.Client {
    constructor(options: pg.ClientConfig) {
      // pg-pool keeps the password as a non-enumerable property: a spread alone would drop it.
      super({ ...options, password: options.password, connectionTimeoutMillis: connectTimeoutMs });
    }

    /**
     * The texts `repeatable` made preparable (prepared.ts) run as named statements on a direct connection; should
     * the server show that a pooler is in between after all, naming stops for good and the statement runs again
     * unnamed (PostgreSQL refused it before running it).
     * Every query with parameters gets the deadline below, also those sent through `pool.query`.
     *
     * They go through pg's callback form even when the caller wants a promise (Kysely does): under pg's own
     * promise form, each query's result stayed reachable for V8's young-generation collections until the next
     * full one (a loop of the page's query on one checked-out client kept ~5 MB alive at every scavenge, and V8
     * promoted it; bench/README.md, ninth session).
     */
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    override query(...args: any[]): any {
      const [text, values, callback] = args as [unknown, unknown, unknown];
      if (typeof text !== 'string' || !Array.isArray(values)) return this.deadlined(...args);
      if (typeof callback === 'function') return this.#parameterised(text, values, callback as Callback);
      return new Promise((resolve, reject) => this.#parameterised(text, values, (error, result) => (error ? reject(error) : resolve(result))));
    }

    #parameterised(text: string, values: unknown[], callback: Callback): void {
      const name = pooled ? undefined : statementName(text);
      if (name === undefined) return this.#timed(text, values, callback);
      this.#timed({ name, text, values }, undefined, (error, result) => {
        if (!isPoolerMismatch(error)) return callback(error, result);
        if (stopNaming()) logger.warn({ err: error }, 'a pooler is between the server and PostgreSQL: statements are no longer prepared (set DATABASE_DIRECT_URL to say so)');
        this.#timed(text, values, callback);
      });
    }

    /** `super.query` with a callback, under the deadline. */
    #timed(config: string | pg.QueryConfig, values: unknown[] | undefined, callback: Callback): void {
      const timer = this.#deadline();
      const done: Callback = (error, result) => {
        clearTimeout(timer);
        callback(error, result);
      };
      if (values === undefined) super.query(config, done);
      else super.query(config as string, values, done);
    }

    /**
     * A server that stops answering (frozen, or cut off without a reset) would hold a query forever: past the
     * statement timeout and a grace period, the socket is destroyed, the query fails as a broken connection
     * (retried where that is safe) and the pool drops the client.
     */
    #deadline(): NodeJS.Timeout | undefined {
      if (queryDeadlineMs === undefined) return undefined;
      return setTimeout(() => {
        const socket = (this as unknown as { connection?: { stream?: { destroy(error?: Error): void } } }).connection?.stream;
        socket?.destroy(new Error(`no answer from the database within ${queryDeadlineMs} ms`));
      }, queryDeadlineMs).unref();
    }

    /** Any other form of query (a text alone, a config object, a submittable), under the deadline if it gives a promise. */
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    private deadlined(...args: any[]): any {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const result = (super.query as (...a: any[]) => any)(...args);
      if (result && typeof result.then === 'function') {
        const timer = this.#deadline();
        result.then(
          () => clearTimeout(timer),
          () => clearTimeout(timer),
        );
      }
      return result;
    }
  }
  return defineConfig({
    driver: ResilientDriver,
    clientUrl: databaseUrl,
    entities: [User, Task],
    // Created by migrations and written with SQL alone: the rate limits by rate-limiter-flexible, the task change
    // log by the trigger on tasks (task.changes.ts); no entity maps them, nor the trigger.
    schemaGenerator: { skipTables: ['rate_limits', 'task_changes', 'task_change_pruned'], ignoreTriggers: true },
    metadataProvider: ReflectMetadataProvider,
    extensions: [Migrator, SeedManager],
    forceUtcTimezone: true,
    ensureDatabase: false,
    pool: { min: config.db.min, max: config.db.max, idleTimeoutMillis: config.db.idleTimeoutMs },
    driverOptions: {
      Client: TimedClient,
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
