import {
  PostgreSqlConnection,
  PostgreSqlDriver,
  type AnyEntity,
  type Configuration,
  type Dictionary,
  type EntityData,
  type LoggingOptions,
  type NativeQueryBuilder,
  type QueryResult,
  type RawQueryFragment,
  type Transaction,
} from '@mikro-orm/postgresql';
import { classifyDbError, type DbErrorKind } from './db-errors.js';
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
    try {
      return !ctx && typeof query === 'string' && READ.test(query) ? await withRetry(once) : await once();
    } catch (error) {
      listeners.get(this.config)?.(classifyDbError(error));
      throw error;
    }
  }
}

export class ResilientDriver extends PostgreSqlDriver {
  constructor(config: Configuration) {
    super(config);
    (this as unknown as { connection: PostgreSqlConnection }).connection = new ResilientConnection(this.config);
  }
}
