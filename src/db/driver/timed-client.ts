import pg from 'pg';
import type { Logger } from '../../observability/logger.js';
import { isPoolerMismatch, statementName, stopNaming } from './prepared.js';

type Callback = (error: Error | null | undefined, result?: pg.QueryResult) => void;

export interface ClientTimings {
  /** Each client's own handshake. */
  connectTimeoutMs: number;
  /** Past this without an answer, a query's connection is given up; none for migrations. */
  queryDeadlineMs: number | undefined;
  /** Behind a pooler: no statement is prepared under a name. */
  pooled: boolean;
  logger: Logger;
}

/**
 * The `pg.Client` the pool makes (MikroORM's `driverOptions.Client`). `pg` has one knob for two waits: the pool's
 * `connectionTimeoutMillis` bounds the wait for a connection (acquire), and each client gets the connect timeout
 * for its own handshake. Start-up checks the database with the connect timeout alone (see connect.ts), which also
 * wakes a suspended Neon compute.
 */
export function timedClient({ connectTimeoutMs, queryDeadlineMs, pooled, logger }: ClientTimings): typeof pg.Client {
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
     * promoted it; docs/performance.md, "pg's callback form").
     */
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    override query(...args: any[]): any {
      const [text, values, callback] = args as [unknown, unknown, unknown];
      if (typeof text !== 'string' || !Array.isArray(values)) return this.deadlined(...args);
      if (typeof callback === 'function') return this.#parameterised(text, values, callback as Callback);
      return new Promise((resolve, reject) =>
        this.#parameterised(text, values, (error, result) => (error ? reject(error) : resolve(result))),
      );
    }

    #parameterised(text: string, values: unknown[], callback: Callback): void {
      const name = pooled ? undefined : statementName(text);
      if (name === undefined) return this.#timed(text, values, callback);
      this.#timed({ name, text, values }, undefined, (error, result) => {
        if (!isPoolerMismatch(error)) return callback(error, result);
        if (stopNaming())
          logger.warn(
            { err: error },
            'a pooler is between the server and PostgreSQL: statements are no longer prepared (set DATABASE_DIRECT_URL to say so)',
          );
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
  return TimedClient;
}
