import type { ApolloServerPlugin } from '@apollo/server';
import type { RequestHandler } from 'express';
import { GraphQLError, type GraphQLSchema } from 'graphql';
import type { Config } from '../config/config.js';
import type { Context } from '../graphql/context.js';
import { DocumentLimitsGuard } from './document-limits.js';
import { checkOperation, type QueryLimits } from './query-limits.js';

/**
 * The request guards, wired in one place. Over HTTP the query limits run on the document as sent, before
 * Apollo parses or validates it; a document that arrives without text (a persisted query) is checked once
 * Apollo has resolved it. Either way no resolver runs before the limits pass, and the measured cost is on the
 * context for the rate limits.
 */
export class Guards {
  readonly documents: DocumentLimitsGuard;
  readonly #limits: QueryLimits;

  constructor(
    private readonly schema: GraphQLSchema,
    config: Config,
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
        res.locals.cost = this.documents.check(params.query, params.operationName, variables)?.cost;
      } catch (error) {
        if (!(error instanceof GraphQLError)) return next(error);
        const { http, ...extensions } = error.extensions as { http?: { status: number } };
        return res.status(http?.status ?? 400).json({ errors: [{ message: error.message, extensions }] });
      }
      return next();
    };
  }

  plugin(): ApolloServerPlugin<Context> {
    const { schema } = this;
    const limits = this.#limits;
    return {
      async requestDidStart() {
        return {
          async didResolveOperation({ document, operation, request, contextValue }) {
            if (!operation || contextValue.cost !== undefined) return;
            contextValue.cost = checkOperation(schema, document, operation, request.variables ?? {}, limits).cost;
          },
        };
      },
    };
  }
}
