import { MikroORM } from '@mikro-orm/postgresql';
import pg from 'pg';
import type { Config } from '../config/config.js';
import type { Logger } from '../observability/logger.js';
import { connectionSettings, isNeonPooler } from './connection-settings.js';
import { shippedMigrations } from './migration-files.js';
import { MIGRATIONS_DIR, ormOptions } from './orm-options.js';

/** Any fixed 64-bit number, the same for every instance of this server. */
const MIGRATION_LOCK = 7_262_011_403_915_237n;

/**
 * The URL migrations must use. A session advisory lock taken through a transaction-mode pooler may stay held by
 * whichever server connection ran it, and DDL does not belong there either: when the URL is a pooler's
 * (`DATABASE_URL` on Neon's pooled host and no `DATABASE_DIRECT_URL`), migrating is refused with what to do.
 */
export function migrationUrl(directUrl: string): string {
  if (isNeonPooler(directUrl)) {
    throw new Error(
      'Migrations would run through a connection pooler (a "-pooler" host): a transaction-mode pooler cannot hold ' +
        'their advisory lock. Set DATABASE_DIRECT_URL to the direct (unpooled) URL.',
    );
  }
  return directUrl;
}

/** How often an instance that waits for another's migrations asks for the lock again. */
const LOCK_POLL_MS = 250;

/**
 * Takes the migration lock, asking again until it is free rather than waiting inside one statement: a session
 * waiting on a lock holds a snapshot, and `create index concurrently` (a migration) waits for every snapshot older
 * than its own, which would wait for the instances waiting for it.
 */
async function takeLock(lock: pg.Client): Promise<void> {
  while (!(await lock.query<{ ok: boolean }>('select pg_try_advisory_lock($1) as ok', [MIGRATION_LOCK.toString()])).rows[0]!.ok) {
    await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
  }
}

/** Whether the database records every migration this build ships as applied. */
async function allApplied(client: pg.Client, shipped: string[]): Promise<boolean> {
  const { rows } = await client.query<{ tracked: boolean }>(`select to_regclass('mikro_orm_migrations') is not null as tracked`);
  if (!rows[0]!.tracked) return false;
  const applied = new Set((await client.query<{ name: string }>('select name from mikro_orm_migrations')).rows.map((row) => row.name));
  return shipped.every((name) => applied.has(name));
}

/**
 * Applies pending migrations over the direct (unpooled) URL while holding a session advisory lock, so that
 * instances starting together migrate exactly once: the others wait, then find nothing pending. The lock is held
 * on `connection` when given (open, to `directUrl`; it is ended here), else on a connection of its own.
 */
export async function migrateUnderLock(config: Config, directUrl: string, logger: Logger, connection?: pg.Client): Promise<string[]> {
  const log = logger.child({ component: 'migrations' });
  try {
    migrationUrl(directUrl);
  } catch (error) {
    await connection?.end().catch(() => undefined);
    throw error;
  }
  const lock = connection ?? new pg.Client({ ...connectionSettings(directUrl), connectionTimeoutMillis: config.db.connectTimeoutMs });
  lock.on('error', (error) => log.warn({ err: error }, 'migration lock connection failed'));
  if (!connection) await lock.connect();
  try {
    await takeLock(lock);
    // Most starts find every migration applied: that is told by one table, without loading the migrator.
    if (await allApplied(lock, shippedMigrations(MIGRATIONS_DIR))) {
      log.info({ applied: [] }, 'migrations up to date');
      return [];
    }
    const { Migrator } = await import('@mikro-orm/migrations');
    // The constructor registers the migrator alone; MikroORM.init would also import the seeder.
    const orm = new MikroORM({ ...ormOptions(config, directUrl, logger, { purpose: 'migrations' }), extensions: [Migrator] });
    try {
      const applied = await orm.migrator.up();
      const names = applied.map((m) => m.name);
      log.info({ applied: names }, names.length > 0 ? `applied ${names.length} migration(s)` : 'migrations up to date');
      return names;
    } finally {
      await orm.close();
    }
  } finally {
    await lock.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK.toString()]).catch(() => undefined);
    await lock.end().catch(() => undefined);
  }
}
