import { MikroORM } from '@mikro-orm/postgresql';
import type pg from 'pg';
import type { Config } from './config/config.js';
import { connectWithRetries } from './db/connect.js';
import { migrateUnderLock } from './db/migrate.js';
import { MIGRATIONS_DIR, ormOptions } from './db/orm-options.js';
import type { DatabaseTarget } from './db/database-target.js';
import { ENTITIES } from './entities.js';
import { buildAppSchema } from './schema.js';
import { HealthService } from './health/health.service.js';
import { shippedMigrations } from './db/migration-files.js';
import { Guards } from './guards/guards.js';
import { RateLimits } from './guards/rate-limits.js';
import { TrustedDocuments } from './guards/trusted-documents.js';
import { createHttpApp } from './http/app.js';
import { AuthService, SessionGate, TokenService } from './modules/users/index.js';
import type { Logger } from './observability/logger.js';
import { Metrics } from './http/metrics.js';
import { onDbError } from './db/driver/resilient-driver.js';
import { ChangeFeed } from './modules/tasks/index.js';
import { listenOn } from './realtime/change-listener.js';

export interface ServerOptions {
  config: Config;
  logger: Logger;
  database: Pick<DatabaseTarget, 'url' | 'directUrl'>;
  /** Extra resolvers (tests). */
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  resolvers?: Function[];
  /** Listen on this port instead of the configured one (0: any free port). */
  port?: number;
}

export interface RunningServer {
  url: string;
  orm: MikroORM;
  health: HealthService;
  metrics: Metrics;
  feed: ChangeFeed;
  /** Stops accepting requests, lets in-flight ones finish, closes the pool. */
  stop(): Promise<void>;
}

/** A step of stopping that takes longer than this is named in the log. */
const SLOW_STOP_STEP_MS = 5_000;

/** One turn of the event loop: whatever the database has answered meanwhile is read. */
const aTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * The database reached (with retries), then migrated under the lock when MIGRATE_ON_START is on. Without a pooler
 * in front (one URL), the connection that answered holds the lock: one handshake fewer.
 */
async function prepareDatabase(config: Config, logger: Logger, database: ServerOptions['database']): Promise<void> {
  const { server, client } = await connectWithRetries(database.url, config, logger);
  logger.info({ ...server, poolMax: config.db.max }, 'database connected');
  const lockOnIt = config.migrateOnStart && database.url === database.directUrl;
  if (!lockOnIt) await client.end().catch(() => undefined);
  if (config.migrateOnStart) await migrateUnderLock(config, database.directUrl, logger, lockOnIt ? client : undefined);
}

/** The ORM, the services, the schema and the HTTP app, not listening yet. */
async function buildServer(
  { config, logger, database, resolvers }: Required<Pick<ServerOptions, 'config' | 'logger' | 'database' | 'resolvers'>>,
  trusted: TrustedDocuments | undefined,
) {
  // The constructor, not MikroORM.init: init imports every extension installed (the seeder, the migrator), which
  // the server never uses. The entities are classes: discovering them needs nothing asynchronous.
  const orm = new MikroORM(ormOptions(config, database.url, logger, { entities: ENTITIES }));
  await orm.connect();
  const pool = (await orm.em.getConnection().getNativeClient()) as pg.Pool;
  const health = new HealthService({ pool: () => pool, poolMax: config.db.max, shipped: shippedMigrations(MIGRATIONS_DIR) });
  void health.warm();
  const metrics = new Metrics(() => health.poolStats());
  metrics.instrumentPool(pool);
  onDbError(orm.config, (kind) => metrics.dbError(kind));

  // LISTEN needs a session of its own: over the direct URL, never through a transaction-mode pooler.
  const listen = listenOn(config, database.directUrl, logger);
  const tokens = new TokenService(config, logger);
  const sessions = new SessionGate(orm, tokens, listen, logger, config.jwtTtlSeconds * 1000);
  const auth = new AuthService(
    tokens,
    sessions,
    { refreshTtlSeconds: config.refreshTtlSeconds, sessionsPerUser: config.sessionsPerUser },
    config.bcryptRounds,
    (kind) => metrics.passwordHash(kind),
    logger,
  );
  const feed = new ChangeFeed(orm, config, listen, logger);
  metrics.feed(feed);
  await aTurn();

  const schema = await buildAppSchema(resolvers);
  await aTurn();
  const guards = new Guards(schema, config, new RateLimits(pool, config), trusted);
  const http = await createHttpApp({ config, logger, orm, schema, guards, services: { health, auth, sessions, feed }, metrics });
  await aTurn();
  return { orm, pool, health, metrics, feed, sessions, http };
}

/**
 * Database check, migrations, ORM, schema, HTTP: everything between configuration and signals.
 *
 * Reaching and migrating the database are round trips to it, while building the ORM, the schema and the HTTP app
 * asks it nothing: the two go on together, with a turn of the event loop between the steps of building so that the
 * database's answers are read as they come (docs/performance.md, "Start-up"). Nothing listens before both are done.
 */
export async function startServer({ config, logger, database, resolvers = [], port }: ServerOptions): Promise<RunningServer> {
  const trusted = config.trustedDocuments ? TrustedDocuments.load(config.trustedDocuments) : undefined;
  if (trusted) logger.info({ manifest: config.trustedDocuments, documents: trusted.size }, 'only trusted documents run');
  const prepared = prepareDatabase(config, logger, database);

  let built;
  try {
    built = await buildServer({ config, logger, database, resolvers }, trusted);
  } catch (error) {
    await prepared.catch(() => undefined);
    throw error;
  }
  const { orm, pool, health, metrics, feed, sessions, http } = built;
  try {
    await prepared;
  } catch (error) {
    await Promise.all([sessions.close(), health.close(), orm.close()]);
    throw error;
  }
  await new Promise<void>((resolve, reject) => {
    http.httpServer.once('error', reject);
    http.httpServer.listen(port ?? config.port, config.host, resolve);
  });
  const address = http.httpServer.address() as { port: number };
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${address.port}`;
  logger.info({ url: `${url}/graphql` }, 'server ready');

  return {
    url,
    orm,
    health,
    metrics,
    feed,
    stop: async () => {
      // Each step that takes longer than it should is named in the log: a stop that hangs says where.
      const step = async (name: string, work: () => Promise<unknown>) => {
        const started = Date.now();
        await work();
        const ms = Date.now() - started;
        if (ms > SLOW_STOP_STEP_MS) logger.warn({ step: name, ms }, 'a step of stopping was slow');
      };
      await step('http', () => http.stop());
      await step('change feed', () => feed.close());
      await step('sessions', () => sessions.close());
      await step('health', () => health.close());
      await step('orm', () => orm.close());
      // Kysely ends the pool only if it ran a statement itself.
      if (!(pool as pg.Pool & { ending: boolean }).ending) await step('pool', () => pool.end());
    },
  };
}
