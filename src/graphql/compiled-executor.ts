import type { GatewayExecutor, GatewayInterface } from '@apollo/server-gateway-interface';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import { execute, getVariableValues, GraphQLEnumType, GraphQLError, TokenKind, type DocumentNode, type ExecutionResult, type GraphQLSchema } from 'graphql';
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';

/** The run of a query from which it runs compiled; the runs before are graphql-js's. */
export const COMPILE_AFTER = 10;

type Compiled = CompiledQuery | 'graphql-js';

const tracer = trace.getTracer('todo-graphql-server');

/**
 * Apollo runs operations through this executor (its gateway interface) instead of calling graphql-js's `execute`
 * itself. From its `COMPILE_AFTER`-th run a query is compiled by graphql-jit into a function of its own, which skips
 * graphql-js's per-field work (and most of its allocation); until then, or when graphql-jit cannot compile it, it
 * runs on graphql-js. Parsing, validation, the guards and every plugin run in Apollo's pipeline before this, so
 * only a document every limit has let through is compiled.
 *
 * Only queries are compiled; mutations and subscriptions stay graphql-js's. The function graphql-jit (0.8.9) generates
 * for a mutation's serial execution kept each mutation's whole request alive through V8's young collections, until
 * the next full one: 4.5 KB promoted per creation at one connection, against 0.5 KB on graphql-js (`npm run
 * bench:scavenges -- --scenario D`; bench/README.md, tenth session). A mutation answers one object: little to skip.
 *
 * Compiling costs about 1 ms for a page of tasks and 25 ms for 30 aliased pages (the alias limit), on the event
 * loop: a client sending new documents pays for `COMPILE_AFTER` executions of each before the server compiles it,
 * and only counts in a map of `capacity` documents, the oldest forgotten first; compiled documents are kept apart,
 * `capacity` of them, the least recently run forgotten first, so that such a client cannot push out the hot ones.
 */
export function compiledExecution(schema: GraphQLSchema, capacity = 500): GatewayInterface {
  // Leaves of the built-in scalars and of enums are answered as the resolvers give them, without a serialiser
  // call each (whose arguments graphql-jit builds eagerly: a path and a location array per leaf, ~25 KB of a page
  // of tasks): resolvers give String, ID, Boolean, Int and Float fields values of their type (TypeScript holds
  // them to it). An enum's serialiser turns its value into its name, so this holds only where every value is its
  // name, as TypeGraphQL's string enums make them.
  const options = { disableLeafSerialization: Object.values(schema.getTypeMap()).every((type) => !(type instanceof GraphQLEnumType) || type.getValues().every(({ name, value }) => name === value)) };
  const runs = new Map<string, number>();
  const compiled = new Map<string, Compiled>();
  const entryFor = (key: string, compile: () => Compiled): Compiled | undefined => {
    const entry = compiled.get(key);
    if (entry !== undefined) {
      compiled.delete(key);
      compiled.set(key, entry);
      return entry;
    }
    const count = (runs.get(key) ?? 0) + 1;
    runs.delete(key);
    if (count < COMPILE_AFTER) {
      runs.set(key, count);
      if (runs.size > capacity) runs.delete(runs.keys().next().value!);
      return undefined;
    }
    const made = compile();
    compiled.set(key, made);
    if (compiled.size > capacity) compiled.delete(compiled.keys().next().value!);
    return made;
  };

  const executor: GatewayExecutor = async ({ document, operation, operationName, queryHash, request, context }) => {
    const entry = operation.operation !== 'query' ? undefined : entryFor(`${operationName ?? ''}:${queryHash}`, () => {
      const result = compileQuery(schema, document, operationName ?? undefined, options);
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
      if (span.isRecording()) span.setAttribute('graphql.source', maskedSource(document));
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

/**
 * The document as its tokens (those the parser kept), every literal a `*` and no comment: what a trace may say
 * of a client's document.
 */
export function maskedSource(document: DocumentNode): string {
  const tokens: string[] = [];
  for (let token = document.loc?.startToken.next; token && token.kind !== TokenKind.EOF; token = token.next) {
    if (token.kind !== TokenKind.COMMENT) tokens.push(LITERALS.has(token.kind) ? '*' : (token.value ?? token.kind));
  }
  return tokens.join(' ');
}
