import type pg from 'pg';

/**
 * Gives back to the pool a connection that died while checked out. Kysely releases a transaction's connection
 * only after a successful COMMIT or ROLLBACK; when BEGIN, COMMIT or ROLLBACK fails because the server went
 * away, the connection would stay checked out for good, and every database restart would cost the pool a slot
 * until none is left. Release is also made idempotent, so a late release by its holder is harmless.
 */
export function releaseDeadClients(pool: pg.Pool): void {
  pool.on('acquire', (client) => {
    // pg-pool attaches `release` right after emitting 'acquire'.
    queueMicrotask(() => {
      const release = client.release;
      let released = false;
      const onEnd = () => {
        if (released) return;
        released = true;
        release(new Error('connection lost while checked out'));
      };
      client.release = ((error?: Error | boolean) => {
        client.removeListener('end', onEnd);
        if (released) return;
        released = true;
        release(error);
      }) as typeof client.release;
      client.once('end', onEnd);
    });
  });
}
