import type { ApolloServerPlugin } from '@apollo/server';
import type { Context } from './context.js';

/**
 * Counts operations still executing. A client that hangs up does not stop its operation: the HTTP drain
 * cannot see it, so shutdown waits here before closing the pool under it.
 */
export class InflightOperations {
  #count = 0;
  #idle: ((drained: boolean) => void)[] = [];

  plugin(): ApolloServerPlugin<Context> {
    return {
      requestDidStart: async () => {
        this.#count++;
        return {
          willSendResponse: async () => {
            this.#count--;
            if (this.#count === 0) for (const resolve of this.#idle.splice(0)) resolve(true);
          },
        };
      },
    };
  }

  /** Operations executing now. */
  get count(): number {
    return this.#count;
  }

  /** Resolves true when no operation is executing, or false after `timeoutMs` with some still running. */
  idle(timeoutMs: number): Promise<boolean> {
    if (this.#count === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      this.#idle.push(resolve);
      setTimeout(() => resolve(false), timeoutMs).unref();
    });
  }
}
