import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_RETRY, isTransient, retryDelayMs, type RetryPolicy } from './db-errors.js';

/**
 * Runs `work` again on a transient failure, within the policy's attempts and time budget. Only for work that is
 * safe to repeat: a read, or a transaction that provably did not commit (`canRetry` says which).
 */
export async function withRetry<T>(
  work: () => Promise<T>,
  canRetry: (error: unknown) => boolean = isTransient,
  policy: RetryPolicy = DEFAULT_RETRY,
): Promise<T> {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      const delay = retryDelayMs(attempt);
      if (attempt >= policy.retries || !canRetry(error) || Date.now() - started + delay > policy.budgetMs) throw error;
      await sleep(delay);
    }
  }
}
