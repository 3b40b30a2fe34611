import {
  PostgreSqlConnection,
  PostgreSqlDriver,
  type AnyEntity,
  type Configuration,
  type Dictionary,
  type EntityManager,
  type EntityData,
  type LoggingOptions,
  type NativeQueryBuilder,
  type QueryResult,
  type RawQueryFragment,
  type Transaction,
} from '@mikro-orm/postgresql';
import type pg from 'pg';
import { classifyDbError, type DbErrorKind } from './db-errors.js';
import { numbered, preparable } from './prepared.js';
import { withRetry } from './retry.js';

const READ = /^\s*select\b/i;

/** Counts database failures by kind, for /metrics. */
export type DbErrorListener = (kind: DbErrorKind) => void;
const listeners = new WeakMap<Configuration, DbErrorListener>();

export function onDbError(config: Configuration, listener: DbErrorListener): void {
  listeners.set(config, listener);
}

/**
 * Every statement passes here. A read outside a transaction that fails on a broken connection (a killed
 * backend, a restart) runs again on a fresh one, so the client never sees it; statements inside a transaction
 * are left to the transaction's own retry (see transaction.ts).
 */
class ResilientConnection extends PostgreSqlConnection {
  override async execute<T extends QueryResult | EntityData<AnyEntity> | EntityData<AnyEntity>[] = EntityData<AnyEntity>[]>(
    query: string | NativeQueryBuilder | RawQueryFragment,
    params?: readonly unknown[] | Dictionary<unknown>,
    method?: 'all' | 'get' | 'run',
    ctx?: Transaction,
    loggerContext?: LoggingOptions,
  ): Promise<T> {
    const once = () => super.execute<T>(query, params, method, ctx, loggerContext);
    return this.#reported(() => (!ctx && typeof query === 'string' && READ.test(query) ? withRetry(once) : once()));
  }

  /**
   * One statement outside any transaction that is safe to run again (a read, or a write that a second run leaves
   * as the first did), its parameters sent apart from its text so that the text can be prepared once per
   * connection (prepared.ts); retried on a transient failure like the reads above.
   */
  async repeatable<T>(sql: string, params: readonly unknown[], planEachRun = false): Promise<T[]> {
    const text = planEachRun ? numbered(sql) : preparable(sql);
    const values = [...params];
    const pool = (await this.getNativeClient()) as pg.Pool;
    const once = () => this.executeQuery(text, async () => (await pool.query(text, values)).rows as T[], { query: text, params: values });
    return this.#reported(() => withRetry(once));
  }

  /** A failure that reaches the caller is counted by kind, for /metrics. */
  async #reported<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      listeners.get(this.config)?.(classifyDbError(error));
      throw error;
    }
  }
}

/**
 * `sql` (with MikroORM's `?` placeholders) alone, safe to repeat; see `ResilientConnection.repeatable`. With
 * `planEachRun` it is never prepared under a name, so PostgreSQL plans it for its values every time: a generic
 * plan, made once for any values, cannot tell a user of a hundred tasks from one of a hundred thousand.
 */
export function repeatable<T>(
  em: EntityManager,
  { sql, params, planEachRun }: { sql: string; params: readonly unknown[]; planEachRun?: boolean },
): Promise<T[]> {
  return (em.getConnection() as ResilientConnection).repeatable<T>(sql, params, planEachRun);
}

export class ResilientDriver extends PostgreSqlDriver {
  constructor(config: Configuration) {
    super(config);
    (this as unknown as { connection: PostgreSqlConnection }).connection = new ResilientConnection(this.config);
  }
}
