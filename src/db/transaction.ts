import type { EntityManager } from '@mikro-orm/postgresql';
import { isConflictRollback, isTransient } from './driver/db-errors.js';
import { withRetry } from './driver/retry.js';

/**
 * `work` in one transaction: flushed and committed together, or rolled back. A transient failure before COMMIT
 * was sent left nothing behind, so the whole transaction runs again on a fresh connection; once COMMIT is on its
 * way the outcome is unknown, and the error goes to the caller rather than risking the write twice. A
 * transaction PostgreSQL rolled back to break a deadlock (or a serialization failure) runs again too.
 */
export function inTransaction<T>(em: EntityManager, work: (em: EntityManager) => Promise<T>): Promise<T> {
  let committing = false;
  return withRetry(
    () => {
      committing = false;
      return em.transactional(async (tx) => {
        const result = await work(tx);
        await tx.flush();
        committing = true;
        return result;
      });
    },
    (error) => !committing && (isTransient(error) || isConflictRollback(error)),
  );
}
