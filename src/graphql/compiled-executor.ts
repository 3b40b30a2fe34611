import { HeaderMap, type ApolloServerPlugin, type BaseContext, type GraphQLRequestListener, type HTTPGraphQLHead } from '@apollo/server';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import {
  getVariableValues,
  GraphQLEnumType,
  TokenKind,
  type DocumentNode,
  type ExecutionResult,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';
import type { CompiledQuery } from 'graphql-jit';

/** The run of a query from which it runs compiled; the runs before are graphql-js's. */
export const COMPILE_AFTER = 10;

type Compiled = CompiledQuery | 'graphql-js';
type Jit = typeof import('graphql-jit');

const tracer = trace.getTracer('todo-graphql-server');

/** What the compiled runner is given of a request: the parts of Apollo's request context it reads. */
export interface Operation {
  document: DocumentNode;
  operation: OperationDefinitionNode;
  operationName: string | null;
  queryHash: string;
  variables: Record<string, unknown> | undefined;
  context: unknown;
}

/**
 * From its `COMPILE_AFTER`-th run a query is compiled by graphql-jit into a function of its own, which skips
 * graphql-js's per-field work (and most of its allocation). The runner answers such a run, or `null` to leave the
 * operation to Apollo's own execution (graphql-js): an operation that is not a query, a query's earlier runs, one
 * graphql-jit cannot compile, and any run whose answer would carry an error. An error's answer is then made by
 * graphql-js and formatted by Apollo's pipeline (codes, masking, `formatError`, the HTTP status) exactly as on
 * the earlier runs; a query only reads, so running it again costs a second read and changes nothing. Parsing,
 * validation, the guards and every plugin run in Apollo's pipeline before this, so only a document every limit
 * has let through is compiled.
 *
 * Only queries are compiled; mutations and subscriptions stay graphql-js's. The function graphql-jit (0.8.9) generates
 * for a mutation's serial execution kept each mutation's whole request alive through V8's young collections, until
 * the next full one: 4.5 KB promoted per creation at one connection, against 0.5 KB on graphql-js (`npm run
 * bench:scavenges -- --scenario D`; docs/performance.md, "Compiled queries, interpreted mutations"). A mutation
 * answers one object: little to skip.
 *
 * Compiling costs about 1 ms for a page of tasks and 25 ms for 30 aliased pages (the alias limit), on the event
 * loop: a client sending new documents pays for `COMPILE_AFTER` executions of each before the server compiles it,
 * and only counts in a map of `capacity` documents, the oldest forgotten first; compiled documents are kept apart,
 * `capacity` of them, the least recently run forgotten first, so that such a client cannot push out the hot ones.
 */
export function compiledRunner(
  schema: GraphQLSchema,
  { capacity = 500, jit: given }: { capacity?: number; jit?: Jit } = {},
): (operation: Operation) => Promise<ExecutionResult | null> {
  // graphql-jit (with fast-json-stringify and ajv under it) is loaded by the first query, not at start-up; a query
  // that reaches its compiling run first waits for it.
  let jit = given;
  let loading: Promise<Jit> | undefined;
  // Leaves of the built-in scalars and of enums are answered as the resolvers give them, without a serialiser
  // call each (whose arguments graphql-jit builds eagerly: a path and a location array per leaf, ~25 KB of a page
  // of tasks): resolvers give String, ID, Boolean, Int and Float fields values of their type (TypeScript holds
  // them to it). An enum's serialiser turns its value into its name, so this holds only where every value is its
  // name, as TypeGraphQL's string enums make them.
  const options = {
    disableLeafSerialization: Object.values(schema.getTypeMap()).every(
      (type) => !(type instanceof GraphQLEnumType) || type.getValues().every(({ name, value }) => name === value),
    ),
  };
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

  return async ({ document, operation, operationName, queryHash, variables, context }) => {
    if (operation.operation !== 'query') return null;
    const key = `${operationName ?? ''}:${queryHash}`;
    if (!jit) {
      loading ??= import('graphql-jit').then((loaded) => (jit = loaded));
      if (!compiled.has(key) && (runs.get(key) ?? 0) + 1 >= COMPILE_AFTER) await loading;
    }
    const entry = entryFor(key, () => {
      const result = jit!.compileQuery(schema, document, operationName ?? undefined, options);
      return jit!.isCompiledQuery(result) ? result : 'graphql-js';
    });
    if (entry === undefined || entry === 'graphql-js') return null;
    // A variable graphql-js would refuse is left to it, so that it is refused in graphql-js's words (BAD_USER_INPUT,
    // status 400); graphql-jit reads variables its own way.
    if (
      operation.variableDefinitions?.length &&
      getVariableValues(schema, operation.variableDefinitions, variables ?? {}, { maxErrors: 1 }).errors
    )
      return null;
    // The span graphql-js's instrumentation makes for `execute`, made here for the compiled run, with the document's
    // literals masked as the instrumentation masks them.
    const name = operation.name ? `${operation.operation} ${operation.name.value}` : operation.operation;
    return tracer.startActiveSpan(
      name,
      {
        attributes: {
          'graphql.operation.type': operation.operation,
          ...(operation.name ? { 'graphql.operation.name': operation.name.value } : {}),
        },
      },
      async (span) => {
        if (span.isRecording()) span.setAttribute('graphql.source', maskedSource(document));
        try {
          const result: ExecutionResult = await entry.query(undefined, context, variables ?? {});
          if (!result.errors) return result;
          span.setStatus({ code: SpanStatusCode.ERROR });
          return null;
        } finally {
          span.end();
        }
      },
    );
  };
}

/** No status and no header of its own: what a compiled answer adds to Apollo's response head. */
const NO_HEAD: HTTPGraphQLHead = { headers: new HeaderMap() };

/**
 * The compiled runner as an Apollo plugin: `responseForOperation` answers in place of Apollo's execution when the
 * runner has an answer, and lets Apollo execute otherwise. Last among the plugins, after every one that may refuse
 * the operation in `didResolveOperation`.
 */
export function compiledExecution<TContext extends BaseContext>(schema: GraphQLSchema): ApolloServerPlugin<TContext> {
  const run = compiledRunner(schema);
  const listener: GraphQLRequestListener<TContext> = {
    responseForOperation: async ({ source, document, operation, operationName, queryHash, request, contextValue }) => {
      // Apollo hashes every document before it parses it; the source stands in only for the type's sake.
      const result = await run({
        document,
        operation,
        operationName,
        queryHash: queryHash ?? source,
        variables: request.variables,
        context: contextValue,
      });
      return result && { http: NO_HEAD, body: { kind: 'single', singleResult: result } };
    },
  };
  return { requestDidStart: async () => listener };
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
