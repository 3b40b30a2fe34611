import type { ApolloServerPlugin } from '@apollo/server';
import {
  GraphQLError,
  Kind,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { getComplexity, simpleEstimator, type ComplexityEstimator } from 'graphql-query-complexity';
import type { Context } from './context.js';
import { ErrorCode } from './errors.js';

export interface QueryLimits {
  /** `tasks { edges { node { owner { email } } } }` is 5 deep; the default limit is 8. */
  maxDepth: number;
  /** A full page of 100 tasks with every field and the owner costs about 1,600; the default limit, 3,000, refuses two. */
  maxCost: number;
}

/** A list field's children cost once per item it may return (`first`); aliases each add their own cost. */
const pageEstimator: ComplexityEstimator = ({ args, childComplexity }) =>
  typeof args.first === 'number' ? 1 + childComplexity * Math.max(args.first, 0) : undefined;

/** Depth of an operation, following fragments; introspection (`__schema`, `__type`) is not counted. */
export function operationDepth(operation: OperationDefinitionNode, fragments: Record<string, FragmentDefinitionNode>): number {
  const depthOf = (selectionSet: SelectionSetNode | undefined, seen: Set<string>): number => {
    if (!selectionSet) return 0;
    let deepest = 0;
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        if (selection.name.value.startsWith('__')) continue;
        deepest = Math.max(deepest, 1 + depthOf(selection.selectionSet, seen));
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        deepest = Math.max(deepest, depthOf(selection.selectionSet, seen));
      } else {
        const name = selection.name.value;
        if (seen.has(name)) continue;
        deepest = Math.max(deepest, depthOf(fragments[name]?.selectionSet, new Set(seen).add(name)));
      }
    }
    return deepest;
  };
  return depthOf(operation.selectionSet, new Set());
}

const tooComplex = (message: string, extensions: Record<string, number>) =>
  new GraphQLError(message, { extensions: { code: ErrorCode.QUERY_TOO_COMPLEX, ...extensions, http: { status: 400 } } });

/** Refuses an operation over the depth or cost limit once it is parsed and validated, before any resolver runs. */
export function limitsPlugin(schema: GraphQLSchema, { maxDepth, maxCost }: QueryLimits): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, operation, request }) {
          if (!operation) return;
          const fragments: Record<string, FragmentDefinitionNode> = {};
          for (const definition of document.definitions) {
            if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments[definition.name.value] = definition;
          }
          const depth = operationDepth(operation, fragments);
          if (depth > maxDepth) throw tooComplex(`The query is ${depth} levels deep; the limit is ${maxDepth}`, { depth, maxDepth });
          let cost: number;
          try {
            cost = getComplexity({
              schema,
              query: document,
              operationName: request.operationName ?? undefined,
              variables: request.variables ?? {},
              estimators: [pageEstimator, simpleEstimator({ defaultComplexity: 1 })],
            });
          } catch {
            // Variables that do not fit their types: execution refuses them (BAD_USER_INPUT) before any resolver.
            return;
          }
          if (cost > maxCost) throw tooComplex(`The query costs ${cost}; the limit is ${maxCost}`, { cost, maxCost });
        },
      };
    },
  };
}
