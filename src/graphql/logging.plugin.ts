import type { ApolloServerPlugin } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import type { Context } from './context.js';
import { isDatabaseUnavailable } from '../db/driver/db-errors.js';
import { isClientError } from './errors.js';

/** Records each operation's name and error codes for the request's log line, and logs unexpected errors in full. */
export function loggingPlugin(): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ contextValue, operationName, operation }) {
          contextValue.outcome.operation = operationName ?? operation?.operation;
        },
        async didEncounterErrors({ contextValue, errors }) {
          const codes: string[] = [];
          for (const error of errors) {
            const original = unwrapResolverError(error);
            if (isClientError(original) || (error.extensions.code && error.extensions.code !== 'INTERNAL_SERVER_ERROR')) {
              codes.push(String(error.extensions.code));
            } else if (isDatabaseUnavailable(original)) {
              codes.push('DATABASE_UNAVAILABLE');
              contextValue.logger.warn({ err: original, path: error.path }, 'database unavailable');
            } else {
              codes.push('INTERNAL_SERVER_ERROR');
              contextValue.logger.error({ err: original, path: error.path }, 'unexpected error');
            }
          }
          contextValue.outcome.errors = codes;
        },
      };
    },
  };
}
