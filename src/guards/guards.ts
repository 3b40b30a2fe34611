import type { ApolloServerPlugin } from '@apollo/server';
import type { RequestHandler } from 'express';
import { GraphQLError, type GraphQLSchema } from 'graphql';
import type { Config } from '../config/config.js';
import type { Context } from '../graphql/context.js';
import { ErrorCode } from '../graphql/errors.js';
import { DocumentLimitsGuard } from './document-limits.js';
import { checkOperation, type QueryLimits } from './query-limits.js';
import type { Allowance, RateLimits } from './rate-limits.js';
import type { GraphQLParams, TrustedDocuments } from './trusted-documents.js';

/** GET carries `variables` and `extensions` as JSON text; anything unreadable is left to Apollo to refuse. */
function parsedJson(params: GraphQLParams, key: string): GraphQLParams {
  if (typeof params[key] !== 'string') return params;
  try {
    return { ...params, [key]: JSON.parse(params[key]) };
  } catch {
    return { ...params, [key]: undefined };
  }
}

/**
 * A GET's GraphQL parameters read as Apollo reads them, from the URL (Express's `req.query` stops at 1,000 keys
 * and would let padding hide a parameter Apollo sees). A repeated one is left out: Apollo refuses it.
 */
function searchParams(url: string): GraphQLParams {
  const search = new URLSearchParams(url.slice(url.indexOf('?') + 1 || url.length));
  const params: GraphQLParams = {};
  for (const key of ['query', 'operationName', 'variables', 'extensions', 'documentId']) {
    const values = search.getAll(key);
    if (values.length === 1) params[key] = values[0];
  }
  return params;
}

/** The GET URL with the resolved parameters, as the GraphQL integration reads them from the URL itself. */
function withQuery(url: string, params: GraphQLParams): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined) search.set(key, typeof value === 'string' ? value : JSON.stringify(value));
  }
  return `${url.split('?')[0]}?${search}`;
}

const subscriptionOverHttp = () =>
  new GraphQLError('Subscriptions are served over WebSocket on /graphql (graphql-ws) and Server-Sent Events on /graphql/stream', {
    extensions: { code: 'BAD_REQUEST', http: { status: 400 } },
  });

/**
 * The request guards, wired in one place. Over HTTP the query limits run on the document as sent, before
 * Apollo parses or validates it, so that a hostile document costs little; once Apollo has resolved the
 * operation it is measured again, as Apollo will run it (the same document, or one that arrived without text
 * as a persisted query), and the rate limits charge that measure. No resolver runs before both.
 */
export class Guards {
  readonly documents: DocumentLimitsGuard;
  readonly #limits: QueryLimits;

  constructor(
    private readonly schema: GraphQLSchema,
    config: Config,
    readonly rateLimits: RateLimits,
    readonly trusted?: TrustedDocuments,
  ) {
    this.#limits = { maxDepth: config.maxQueryDepth, maxCost: config.maxQueryCost, maxAliases: config.maxQueryAliases };
    this.documents = new DocumentLimitsGuard(schema, { ...this.#limits, maxTokens: config.maxQueryTokens });
  }

  /**
   * Express, on `/graphql` after the body parser: with trusted documents, replaces a hash by its document or
   * refuses what the manifest does not hold; then refuses a document over the limits with 400.
   */
  http(): RequestHandler {
    return (req, res, next) => {
      try {
        let params = req.method === 'GET' ? searchParams(req.url) : (req.body as GraphQLParams | undefined);
        // A GET without GraphQL parameters is a browser asking for the landing page.
        const asks = params !== undefined && ['query', 'documentId', 'extensions'].some((key) => params![key] !== undefined);
        if (this.trusted && (req.method === 'POST' || (req.method === 'GET' && asks))) {
          params = this.trusted.resolve(req.method === 'GET' ? parsedJson(params ?? {}, 'extensions') : (params ?? {}));
          if (req.method === 'GET') req.url = withQuery(req.url, params);
          else req.body = params;
        }
        if (typeof params?.query !== 'string') return next();
        this.documents.check(params.query, params.operationName, parsedJson(params, 'variables').variables);
      } catch (error) {
        if (!(error instanceof GraphQLError)) return next(error);
        const { http, ...extensions } = error.extensions as { http?: { status: number } };
        return res.status(http?.status ?? 400).json({ errors: [{ message: error.message, extensions }] });
      }
      return next();
    };
  }

  /**
   * Once Apollo has resolved the operation: the limits on it as it will run, then the rate limits charge it (a
   * sign-in or sign-up attempt to the client's address, its cost to the signed-in user, whose response tells
   * what is left). RATE_LIMITED when either is spent.
   */
  plugin(): ApolloServerPlugin<Context> {
    const { schema, rateLimits } = this;
    const limits = this.#limits;
    return {
      requestDidStart: async () => ({
        didResolveOperation: async ({ document, operation, request, contextValue: { viewer, clientIp }, response }) => {
          if (!operation) return;
          if (operation.operation === 'subscription') throw subscriptionOverHttp();
          const { passwordChecks, refreshes, cost } = checkOperation(schema, document, operation, request.variables ?? {}, limits);
          if (passwordChecks > 0) await rateLimits.passwordAttempt(clientIp, viewer.kind === 'user' ? viewer.userId : undefined);
          if (refreshes > 0) await rateLimits.refreshAttempt(clientIp);
          if (viewer.kind !== 'user') return;
          const tell = ({ limit, remaining, resetSeconds }: Allowance) => {
            response.http.headers.set('ratelimit-limit', String(limit));
            response.http.headers.set('ratelimit-remaining', String(remaining));
            response.http.headers.set('ratelimit-reset', String(resetSeconds));
          };
          const allowance = await rateLimits.spend(viewer.userId, cost).catch((error: unknown) => {
            if (error instanceof GraphQLError && error.extensions.code === ErrorCode.RATE_LIMITED) {
              tell({ limit: rateLimits.costLimit, remaining: 0, resetSeconds: error.extensions.retryAfterSeconds as number });
            }
            throw error;
          });
          if (allowance) tell(allowance);
        },
      }),
    };
  }
}
