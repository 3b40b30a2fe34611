import type { ApolloServerPlugin } from '@apollo/server';
import type { RequestHandler } from 'express';
import { GraphQLError, type GraphQLSchema } from 'graphql';
import type { Config } from '../config/config.js';
import type { Context } from '../graphql/context.js';
import { ErrorCode } from '../graphql/errors.js';
import { DocumentLimitsGuard } from './document-limits.js';
import { checkOperation, type QueryLimits, type QueryMeasure } from './query-limits.js';
import type { Allowance, RateLimits } from './rate-limits.js';

/**
 * The request guards, wired in one place. Over HTTP the query limits run on the document as sent, before
 * Apollo parses or validates it; a document that arrives without text (a persisted query) is checked once
 * Apollo has resolved it. Then the rate limits charge what the limits measured. No resolver runs before both.
 */
export class Guards {
  readonly documents: DocumentLimitsGuard;
  readonly #limits: QueryLimits;

  constructor(
    private readonly schema: GraphQLSchema,
    config: Config,
    readonly rateLimits: RateLimits,
  ) {
    this.#limits = { maxDepth: config.maxQueryDepth, maxCost: config.maxQueryCost, maxAliases: config.maxQueryAliases };
    this.documents = new DocumentLimitsGuard(schema, { ...this.#limits, maxTokens: config.maxQueryTokens });
  }

  /** Express, on `/graphql` after the body parser: refuses a document over the limits with 400. */
  http(): RequestHandler {
    return (req, res, next) => {
      const params = (req.method === 'GET' ? req.query : req.body) as Record<string, unknown> | undefined;
      if (typeof params?.query !== 'string') return next();
      let variables = params.variables;
      if (typeof variables === 'string') {
        try {
          variables = JSON.parse(variables);
        } catch {
          variables = undefined;
        }
      }
      try {
        res.locals.measure = this.documents.check(params.query, params.operationName, variables);
      } catch (error) {
        if (!(error instanceof GraphQLError)) return next(error);
        const { http, ...extensions } = error.extensions as { http?: { status: number } };
        return res.status(http?.status ?? 400).json({ errors: [{ message: error.message, extensions }] });
      }
      return next();
    };
  }

  /**
   * Charges an operation to the rate limits: a sign-in or sign-up attempt to the client's address, its cost to
   * the signed-in user. RATE_LIMITED when either is spent.
   */
  async admit({ hashes, cost }: QueryMeasure, { viewer, clientIp }: Pick<Context, 'viewer' | 'clientIp'>): Promise<Allowance | undefined> {
    if (hashes > 0) await this.rateLimits.authAttempt(clientIp);
    return viewer.kind === 'user' ? this.rateLimits.spend(viewer.userId, cost) : undefined;
  }

  plugin(): ApolloServerPlugin<Context> {
    const { schema } = this;
    const limits = this.#limits;
    return {
      requestDidStart: async () => ({
        didResolveOperation: async ({ document, operation, request, contextValue, response }) => {
          if (!operation) return;
          contextValue.measure ??= checkOperation(schema, document, operation, request.variables ?? {}, limits);
          const headers = response.http.headers;
          try {
            const allowance = await this.admit(contextValue.measure, contextValue);
            if (allowance) {
              headers.set('ratelimit-limit', String(allowance.limit));
              headers.set('ratelimit-remaining', String(allowance.remaining));
              headers.set('ratelimit-reset', String(allowance.resetSeconds));
            }
          } catch (error) {
            if (error instanceof GraphQLError && error.extensions.code === ErrorCode.RATE_LIMITED && contextValue.viewer.kind === 'user') {
              headers.set('ratelimit-remaining', '0');
              headers.set('ratelimit-reset', String(error.extensions.retryAfterSeconds));
            }
            throw error;
          }
        },
      }),
    };
  }
}
