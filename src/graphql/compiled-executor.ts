import type { GatewayExecutor, GatewayInterface } from '@apollo/server-gateway-interface';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import { execute, getVariableValues, GraphQLError, Lexer, Source, TokenKind, type ExecutionResult, type GraphQLSchema } from 'graphql';
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';

/** A document's state: seen once (`'seen'`), compiled, or refused by the compiler (`'graphql-js'`). */
type Entry = 'seen' | 'graphql-js' | CompiledQuery;

const tracer = trace.getTracer('todo-graphql-server');

/**
 * Apollo runs operations through this executor (its gateway interface) instead of calling graphql-js's `execute`
 * itself. A query seen a second time is compiled by graphql-jit into a function of its own, which skips
 * graphql-js's per-field work (and most of its allocation); a document seen once, or one graphql-jit cannot
 * compile, runs on graphql-js as before. Parsing, validation, the guards and every plugin run in Apollo's pipeline
 * before this, so a compiled document has passed every limit; at most `capacity` documents are remembered, the
 * oldest forgotten first, so a client sending endless new documents costs one map entry each and no compilation.
 */
export function compiledExecution(schema: GraphQLSchema, capacity = 500): GatewayInterface {
  const documents = new Map<string, Entry>();
  const entryFor = (key: string, compile: () => Exclude<Entry, 'seen'>): Exclude<Entry, 'seen'> | undefined => {
    const entry = documents.get(key);
    if (entry === undefined) {
      documents.set(key, 'seen');
      if (documents.size > capacity) documents.delete(documents.keys().next().value!);
      return undefined;
    }
    if (entry !== 'seen') return entry;
    const compiled = compile();
    documents.set(key, compiled);
    return compiled;
  };

  const executor: GatewayExecutor = async ({ document, operation, operationName, queryHash, request, context }) => {
    // Queries only: a mutation's answer is a handful of fields, where compiling buys nothing.
    const entry = operation.operation !== 'query' ? undefined : entryFor(`${operationName ?? ''}:${queryHash}`, () => {
      const result = compileQuery(schema, document, operationName ?? undefined);
      return isCompiledQuery(result) ? result : 'graphql-js';
    });
    if (entry === undefined || entry === 'graphql-js') {
      return execute({ schema, document, operationName, variableValues: request.variables, contextValue: context });
    }
    // Variables are coerced by graphql-js first, so that a bad one is refused in graphql-js's words (which Apollo
    // recognises as BAD_USER_INPUT with status 400); graphql-jit then reads them again, its own way.
    if (operation.variableDefinitions?.length) {
      const coerced = getVariableValues(schema, operation.variableDefinitions, request.variables ?? {}, { maxErrors: 50 });
      if (coerced.errors) return { errors: coerced.errors };
    }
    // The span graphql-js's instrumentation makes for `execute`, made here for the compiled run, with the document's
    // literals masked as the instrumentation masks them.
    const name = operation.name ? `${operation.operation} ${operation.name.value}` : operation.operation;
    return tracer.startActiveSpan(name, { attributes: { 'graphql.operation.type': operation.operation, ...(operation.name ? { 'graphql.operation.name': operation.name.value } : {}) } }, async (span) => {
      if (span.isRecording()) span.setAttribute('graphql.source', maskedSource(request.query ?? ''));
      try {
        const result: ExecutionResult = await entry.query(undefined, context, request.variables ?? {});
        if (result.errors) span.setStatus({ code: SpanStatusCode.ERROR });
        return result.errors ? { ...result, errors: result.errors.map(upstreamError) } : result;
      } finally {
        span.end();
      }
    });
  };
  return {
    load: async () => ({ executor }),
    onSchemaLoadOrUpdate: (callback) => {
      callback({ apiSchema: schema, coreSupergraphSdl: '' });
      return () => {};
    },
    stop: async () => {},
  };
}

/**
 * graphql-jit's errors have no `extensions` object when the resolver's error had none, which Apollo's error
 * formatting reads: each becomes graphql-js's own error, with the same message, locations, path and cause.
 */
function upstreamError(error: GraphQLError): GraphQLError {
  const upstream = new GraphQLError(error.message, { path: error.path, originalError: error.originalError ?? undefined, extensions: error.extensions });
  return Object.assign(upstream, { locations: error.locations });
}

const LITERALS = new Set<string>([TokenKind.STRING, TokenKind.BLOCK_STRING, TokenKind.INT, TokenKind.FLOAT]);

/** The document as its tokens, every literal a `*` and no comment: what a trace may say of a client's document. */
export function maskedSource(document: string): string {
  const lexer = new Lexer(new Source(document));
  const tokens: string[] = [];
  for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
    tokens.push(LITERALS.has(token.kind) ? '*' : (token.value ?? token.kind));
  }
  return tokens.join(' ');
}
