import { randomUUID } from 'node:crypto';
import {
  GraphQLError,
  NoSchemaIntrospectionCustomRule,
  parse,
  specifiedRules,
  validate,
  getOperationAST,
  Kind,
  type DocumentNode,
  type SelectionSetNode,
  type ExecutionArgs,
  type ExecutionResult,
  type FormattedExecutionResult,
  type GraphQLFormattedError,
  type GraphQLSchema,
} from 'graphql';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Config } from '../config/config.js';
import { RequestContext, type Context, type Services, type SubscriberLink } from '../graphql/context.js';
import type { Guards } from '../guards/guards.js';
import { ErrorCode, formatError, isClientError } from '../graphql/errors.js';
import type { GraphQLParams } from '../guards/trusted-documents.js';
import type { Logger } from '../observability/logger.js';
import { viewerFrom } from '../graphql/viewer.js';
import { COST_WEIGHTS, type FieldCost } from '../guards/cost.js';

/** Whether a selection at the root of the operation (through its fragments) is under @skip or @include. */
function rootIsConditional(document: DocumentNode, selectionSet: SelectionSetNode): boolean {
  return selectionSet.selections.some((selection) => {
    if (selection.directives?.some((directive) => directive.name.value === 'skip' || directive.name.value === 'include')) return true;
    if (selection.kind === Kind.INLINE_FRAGMENT) return rootIsConditional(document, selection.selectionSet);
    if (selection.kind !== Kind.FRAGMENT_SPREAD) return false;
    // The document is valid: the fragment exists and spreads no cycle.
    const fragment = document.definitions.find((d) => d.kind === Kind.FRAGMENT_DEFINITION && d.name.value === selection.name.value);
    return fragment?.kind === Kind.FRAGMENT_DEFINITION && rootIsConditional(document, fragment.selectionSet);
  });
}

export interface Subscriber {
  userId: string;
  sessionId: string;
  /** Epoch milliseconds. */
  expiresAt: number;
  /** Aborted when the session ends (once followed: SubscriptionGateway.follow); its subscriptions then end. */
  session: AbortController;
}

/** What the gateway is built from; the HTTP app is built from the same, and the metrics. */
export interface GatewayDeps {
  config: Config;
  logger: Logger;
  orm: MikroORM;
  schema: GraphQLSchema;
  guards: Guards;
  services: Services;
}

/** Validated subscription documents kept by their text. */
const DOCUMENTS_KEPT = 100;

const requestError = (message: string, code: string) => new GraphQLError(message, { extensions: { code } });

/**
 * What both subscription transports (WebSocket and Server-Sent Events) do around graphql's `subscribe`, since
 * they bypass Apollo's pipeline: the same token check, trusted documents, query limits (before graphql validates,
 * as over HTTP), validation without schema hints in production, the cost rate limit, and the same masking of
 * errors. Only subscriptions are served here; queries and mutations go to `POST /graphql` and its unit of work.
 */
export class SubscriptionGateway {
  readonly #format: ReturnType<typeof formatError>;
  readonly #rules: typeof specifiedRules;
  readonly #documents = new Map<string, DocumentNode>();
  /** What subscribing costs in statements (the root field's declared SQL), which an event does not repeat. */
  readonly #subscribeSql: number;

  constructor(private readonly deps: GatewayDeps) {
    const production = deps.config.env === 'production';
    this.#format = formatError(production);
    this.#rules = production ? [...specifiedRules, NoSchemaIntrospectionCustomRule] : specifiedRules;
    const roots = Object.values(deps.schema.getSubscriptionType()?.getFields() ?? {});
    this.#subscribeSql = Math.max(
      0,
      ...roots.map((field) => ((field.extensions.cost as FieldCost | undefined)?.sql ?? 0) * COST_WEIGHTS.sql),
    );
  }

  /**
   * The subscriber a `Bearer` token names, if it is valid and its session live; 'unavailable' when the session
   * cannot be checked now (the database is away).
   */
  async subscriber(authorization: unknown): Promise<Subscriber | 'unavailable' | undefined> {
    const viewer = await viewerFrom(typeof authorization === 'string' ? authorization : undefined, this.deps.services.sessions);
    if (viewer.kind === 'unavailable') return 'unavailable';
    if (viewer.kind !== 'user') return undefined;
    return { userId: viewer.userId, sessionId: viewer.sessionId, expiresAt: viewer.expiresAt, session: new AbortController() };
  }

  /**
   * Follows the subscriber's session while its connection is open: when the session ends, its subscriptions end
   * with UNAUTHENTICATED and `onEnd` is called (to close the connection). Returns what stops following it.
   */
  follow(subscriber: Subscriber, onEnd: () => void = () => undefined): () => void {
    return this.deps.services.sessions.follow(subscriber.sessionId, (error) => {
      subscriber.session.abort(error);
      onEnd();
    });
  }

  /**
   * The execution of a subscribe request, or the errors that refuse it (not yet masked). Every check here costs
   * little before the next: limits on the text, then parsing and validation of a document within them.
   */
  async prepare(
    subscriber: Subscriber,
    request: GraphQLParams,
    transport: Pick<SubscriberLink, 'writable' | 'observer'> & { clientIp: string },
  ): Promise<ExecutionArgs | GraphQLError[]> {
    const { guards, schema } = this.deps;
    try {
      // graphql-ws and graphql-sse clients insist on a `query` string: a document sent by its hash has an empty one.
      const named =
        request.query === '' && (request.documentId !== undefined || request.extensions !== undefined)
          ? { ...request, query: undefined }
          : request;
      const params = guards.trusted ? guards.trusted.resolve(named) : named;
      const { query, operationName, variables } = params;
      if (typeof query !== 'string') return [requestError('The request has no query', 'BAD_REQUEST')];
      if (operationName != null && typeof operationName !== 'string')
        return [requestError('operationName must be a string', 'BAD_REQUEST')];
      if (variables != null && (typeof variables !== 'object' || Array.isArray(variables))) {
        return [requestError('variables must be an object', 'BAD_REQUEST')];
      }
      const measure = guards.documents.check(query, operationName, variables);
      const document = this.#document(query);
      if (Array.isArray(document)) return document;
      const operation = getOperationAST(document, operationName ?? undefined);
      if (!operation || !measure) return [requestError('Name one operation of the document', 'OPERATION_RESOLUTION_FAILURE')];
      if (operation.operation !== 'subscription') {
        return [requestError('Only subscriptions are served here: send queries and mutations to POST /graphql', 'BAD_REQUEST')];
      }
      // graphql's subscribe cannot run without its root field, and fails as if it were our fault.
      if (rootIsConditional(document, operation.selectionSet)) {
        return [requestError('A subscription’s root field cannot carry @skip or @include', 'GRAPHQL_VALIDATION_FAILED')];
      }
      await guards.rateLimits.spend(subscriber.userId, measure.cost);
      // Each event costs what it sends: its fields, as a query's would, without the statements of subscribing.
      const eventCost = Math.max(1, measure.cost - this.#subscribeSql);
      const charge = () => guards.rateLimits.spend(subscriber.userId, eventCost);
      return {
        schema,
        document,
        operationName: operationName ?? undefined,
        variableValues: (variables as Record<string, unknown> | null | undefined) ?? undefined,
        contextValue: this.#context(subscriber, { ...transport, charge }),
      };
    } catch (error) {
      if (error instanceof GraphQLError) return [error];
      throw error;
    }
  }

  /**
   * The document for a query text, parsed and validated, or the errors that refuse it. Valid documents are kept
   * (the last DOCUMENTS_KEPT of them, up to 10,000 characters each): clients subscribe with the same few texts,
   * and every open subscription then shares one document instead of holding a parse of its own.
   */
  #document(query: string): DocumentNode | GraphQLError[] {
    const known = this.#documents.get(query);
    if (known) return known;
    let document: DocumentNode;
    try {
      document = parse(query, { maxTokens: this.deps.config.maxQueryTokens });
    } catch (error) {
      return [requestError((error as Error).message, 'GRAPHQL_PARSE_FAILED')];
    }
    let invalid: readonly GraphQLError[];
    try {
      invalid = validate(this.deps.schema, document, this.#rules);
    } catch (error) {
      // graphql's single-root-field rule evaluates @skip(if: $variable) without the variables, and throws.
      if (!(error instanceof GraphQLError)) throw error;
      invalid = [error];
    }
    if (invalid.length > 0) {
      const production = this.deps.config.env === 'production';
      return invalid.map((error) =>
        requestError(production ? error.message.replace(/ ?Did you mean(.+?)\?$/, '') : error.message, 'GRAPHQL_VALIDATION_FAILED'),
      );
    }
    if (query.length <= 10_000) {
      this.#documents.set(query, document);
      if (this.#documents.size > DOCUMENTS_KEPT) this.#documents.delete(this.#documents.keys().next().value!);
    }
    return document;
  }

  /** Errors as the client may see them: the contract's codes, nothing of internals (see formatError). */
  mask(errors: readonly GraphQLError[]): GraphQLFormattedError[] {
    return errors.map((error) => {
      // graphql refused the variables before any resolver ran: the client's mistake, as Apollo says.
      if (!error.path && error.extensions.code === undefined && error.message.startsWith('Variable "$')) {
        return { message: error.message, extensions: { code: ErrorCode.BAD_USER_INPUT } };
      }
      const original = error.originalError ?? error;
      if (!isClientError(original)) this.deps.logger.error({ err: original }, 'subscription failed');
      // The HTTP status and headers an error carries are for Apollo's HTTP responses, not for the client to read.
      const extensions = { ...error.extensions };
      delete extensions.http;
      return this.#format({ ...error.toJSON(), extensions }, error);
    });
  }

  maskResult(result: ExecutionResult): FormattedExecutionResult {
    const { errors, ...rest } = result;
    return errors ? { ...rest, errors: this.mask(errors) } : rest;
  }

  #context(
    subscriber: Subscriber,
    { clientIp, writable, observer, charge }: Pick<SubscriberLink, 'writable' | 'observer' | 'charge'> & { clientIp: string },
  ): Context {
    const { orm, logger, services } = this.deps;
    return new RequestContext({ orm, logger }, services, {
      viewer: { kind: 'user', ...subscriber },
      clientIp,
      requestId: randomUUID(),
      subscriber: { expiresAt: subscriber.expiresAt, ended: subscriber.session.signal, writable, observer, charge },
    });
  }
}
