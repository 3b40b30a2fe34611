import { HeaderMap } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { isDatabaseUnavailable } from '../db/driver/db-errors.js';
import { redactText } from '../observability/logger.js';

/** The contract's error codes, each made in one place. */
export const ErrorCode = {
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  QUERY_TOO_COMPLEX: 'QUERY_TOO_COMPLEX',
  RATE_LIMITED: 'RATE_LIMITED',
  RESYNC_REQUIRED: 'RESYNC_REQUIRED',
  DATABASE_UNAVAILABLE: 'DATABASE_UNAVAILABLE',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
} as const;

export const badUserInput = (message: string, field?: string) =>
  new GraphQLError(message, { extensions: { code: ErrorCode.BAD_USER_INPUT, ...(field ? { field } : {}) } });
export const unauthenticated = (message = 'Authentication required') =>
  new GraphQLError(message, { extensions: { code: ErrorCode.UNAUTHENTICATED } });
export const notFound = (message = 'Not found') => new GraphQLError(message, { extensions: { code: ErrorCode.NOT_FOUND } });
export const conflict = (message: string) => new GraphQLError(message, { extensions: { code: ErrorCode.CONFLICT } });
/** A write made against a version of a task that is no longer its current one: nothing was written. */
export const staleVersion = (currentVersion: number) =>
  new GraphQLError('The task has changed since that version: nothing was written', {
    extensions: { code: ErrorCode.CONFLICT, currentVersion },
  });
/** HTTP 429 with `Retry-After`, and the same number of seconds in the error for clients that read only the body. */
export const rateLimited = (message: string, retryAfterSeconds: number) =>
  new GraphQLError(message, {
    extensions: {
      code: ErrorCode.RATE_LIMITED,
      retryAfterSeconds,
      http: { status: 429, headers: new HeaderMap([['retry-after', String(retryAfterSeconds)]]) },
    },
  });
export const resyncRequired = () =>
  new GraphQLError(
    'The change log no longer holds every change after this cursor: refetch the list, then subscribe after its changesCursor',
    {
      extensions: { code: ErrorCode.RESYNC_REQUIRED },
    },
  );
export const databaseUnavailable = () =>
  new GraphQLError('The database cannot be reached right now; try again', {
    extensions: { code: ErrorCode.DATABASE_UNAVAILABLE },
  });

const CLIENT_CODES = new Set<unknown>([
  ...Object.values(ErrorCode).filter((code) => code !== ErrorCode.INTERNAL_SERVER_ERROR),
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
]);

/**
 * Apollo refuses some malformed requests (a persisted-query extension of the wrong shape or hash) with an error
 * that carries an HTTP 4xx status but no code: the client's mistake, in Apollo's own words.
 */
function isApolloRequestError(error: unknown): error is GraphQLError {
  const status = error instanceof GraphQLError ? (error.extensions.http as { status?: number } | undefined)?.status : undefined;
  return error instanceof GraphQLError && error.extensions.code === undefined && status !== undefined && status >= 400 && status < 500;
}

/** Whether an error is one of ours (or Apollo's) meant for the client, rather than something unexpected. */
export function isClientError(error: unknown): boolean {
  return (error instanceof GraphQLError && CLIENT_CODES.has(error.extensions.code)) || isApolloRequestError(error);
}

/**
 * The one place where errors are masked. Client errors pass as they are; an unreachable database becomes
 * DATABASE_UNAVAILABLE; anything else becomes INTERNAL_SERVER_ERROR, saying nothing of internals in production.
 * Unexpected errors are logged in full, with the request id, by the logging plugin.
 */
export function formatError(production: boolean) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    if (isApolloRequestError(original)) return { message: original.message, extensions: { code: 'BAD_REQUEST' } };
    if (isClientError(original) || CLIENT_CODES.has(formatted.extensions?.code)) return formatted;
    if (isDatabaseUnavailable(original)) {
      return { ...databaseUnavailable().toJSON(), locations: formatted.locations, path: formatted.path };
    }
    return {
      message: production ? 'Internal server error' : redactText(formatted.message),
      locations: formatted.locations,
      path: formatted.path,
      extensions: production
        ? { code: ErrorCode.INTERNAL_SERVER_ERROR }
        : { ...formatted.extensions, code: ErrorCode.INTERNAL_SERVER_ERROR },
    };
  };
}
