import pg from 'pg';

/**
 * A one-connection pool for the health probe, built from the options the application pool was built with
 * (`pool.options`: what `ormOptions()` and MikroORM gave `pg.Pool`: host, database, user, TLS, channel binding,
 * the client class with its connect timeout and query deadline, keepAlive, application_name, idle timeout,
 * lifetime, type parsers). The probe then never queues behind application queries for a connection.
 *
 * No session setting is sent (the application pool's `onPoolCreated` hook is not part of its options), so it
 * works behind a transaction-mode pooler too. An idle connection closes after the application's idle timeout
 * and never keeps the process alive (`allowExitOnIdle`).
 */
export function probePoolLike(app: pg.Pool): pg.Pool {
  const { options } = app;
  const pool = new pg.Pool({
    ...options,
    // pg-pool keeps the password as a non-enumerable property: a spread alone would drop it.
    password: options.password,
    min: 0,
    max: 1,
    allowExitOnIdle: true,
    // Told apart from the request pool in pg_stat_activity.
    application_name: 'todo-graphql-server health',
  });
  // An idle connection that dies is dropped by the pool and reported by the next probe; one that fails while
  // checked out fails the probe's query. Neither may become an uncaught 'error' event.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}
