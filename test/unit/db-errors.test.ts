import { classifyDbError, isDatabaseUnavailable } from '../../src/db/driver/db-errors.js';

/** An error as pg reports one from the server or the pooler: its SQLSTATE and message. */
const fromServer = (code: string, message: string) => Object.assign(new Error(message), { code, severity: 'FATAL' });
/** As MikroORM wraps a driver error. */
const wrapped = (error: Error) => Object.assign(new Error(`select 1 - ${error.message}`), { previous: error });

describe('database errors', () => {
  it.each([
    ['PgBouncer after a database restart', fromServer('08P01', 'server login has been failing, try again later (server_login_retry)')],
    ['PgBouncer at max_client_conn', fromServer('08P01', 'no more connections allowed (max_client_conn)')],
    ['PgBouncer past query_wait_timeout', fromServer('08P01', 'query_wait_timeout')],
    ['PgBouncer that cannot reach the server', fromServer('08P01', 'pgbouncer cannot connect to server')],
    ['a server starting up', fromServer('57P03', 'the database system is starting up')],
    ['a server shutting down', fromServer('57P03', 'the database system is shutting down')],
    ['Neon’s proxy while the compute restarts', fromServer('XX000', "Couldn't connect to compute node")],
  ])('call %s unavailable, also wrapped by the ORM', (_, error) => {
    expect(classifyDbError(error)).toBe('unavailable');
    expect(isDatabaseUnavailable(wrapped(error))).toBe(true);
  });

  it('call a broken connection transient, whatever its class-08 SQLSTATE', () => {
    expect(classifyDbError(fromServer('08006', 'connection failure'))).toBe('transient');
    expect(classifyDbError(fromServer('08P01', 'unexpected message from the server'))).toBe('transient');
  });

  it('leave a query’s own failure alone', () => {
    expect(classifyDbError(fromServer('23505', 'duplicate key value violates unique constraint'))).toBe('constraint');
    expect(classifyDbError(fromServer('42P01', 'relation "nope" does not exist'))).toBe('other');
    expect(isDatabaseUnavailable(fromServer('22P02', 'invalid input syntax for type uuid'))).toBe(false);
  });
});
