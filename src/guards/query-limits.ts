import {
  getNamedType,
  getNullableType,
  GraphQLError,
  isInterfaceType,
  isListType,
  isObjectType,
  SchemaMetaFieldDef,
  TypeMetaFieldDef,
  Kind,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';
import { ErrorCode } from '../graphql/errors.js';
import { COST_WEIGHTS, type FieldCost } from './cost.js';

export interface QueryLimits {
  /** `tasks { edges { node { owner { email } } } }` is 5 deep; the default limit is 8. Introspection is not counted. */
  maxDepth: number;
  /** A full page of 100 tasks with every field and the owner costs about 1,600; the default limit, 3,000, refuses two. */
  maxCost: number;
  /** Aliased fields, counted as the operation runs them (a fragment spread twice counts its aliases twice). */
  maxAliases: number;
}

/** What an operation would make the server do, as its document says. */
export interface QueryMeasure {
  depth: number;
  cost: number;
  aliases: number;
  /** Password checks (signUp, signIn, changePassword, deleteAccount). */
  passwordChecks: number;
  /** Refreshes (refreshSession). */
  refreshes: number;
}

/** A selection set's measure, with its list fields' cost apart so that a page can multiply them. */
interface Summary extends QueryMeasure {
  listCost: number;
}

/** Password checks and refreshes together, per request. */
export const MAX_ATTEMPTS_PER_REQUEST = 1;

export const tooComplex = (message: string, extensions: Record<string, number> = {}) =>
  new GraphQLError(message, { extensions: { code: ErrorCode.QUERY_TOO_COMPLEX, ...extensions, http: { status: 400 } } });

const EMPTY: Summary = { depth: 0, cost: 0, listCost: 0, aliases: 0, passwordChecks: 0, refreshes: 0 };

/**
 * Measures one operation in time linear in the document: each fragment is measured once, however often it is
 * spread, and its measure reused. Numbers may grow without bound (fan-out through fragments); they are never
 * evaluated by expanding the fragments. Directives are ignored: a field under `@skip` is still charged.
 *
 * It runs before validation (whose cost grows faster than the document): unknown fields count as one field,
 * unknown fragments and cycles as nothing, and validation refuses them afterwards.
 */
export function measureOperation(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
): QueryMeasure {
  // Without variables an operation's measure is its document's alone, and Apollo (like the document limits)
  // hands every request of the same text the same parsed document: measured once per document and schema.
  if (operation.variableDefinitions?.length) return measure(schema, document, operation, variables);
  let known = measures.get(schema);
  if (!known) measures.set(schema, (known = new WeakMap()));
  let measured = known.get(operation);
  if (!measured) known.set(operation, (measured = measure(schema, document, operation, variables)));
  return measured;
}

const measures = new WeakMap<GraphQLSchema, WeakMap<OperationDefinitionNode, QueryMeasure>>();

function measure(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
): QueryMeasure {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const measured = new Map<string, Summary>();
  const measuring = new Set<string>();

  const variableDefaults = new Map<string, ValueNode>();
  for (const definition of operation.variableDefinitions ?? []) {
    if (definition.defaultValue) variableDefaults.set(definition.variable.name.value, definition.defaultValue);
  }

  const pageSize = (node: FieldNode, field: GraphQLField<unknown, unknown>, { arg, max }: NonNullable<FieldCost['page']>) => {
    const argument = node.arguments?.find((a) => a.name.value === arg)?.value;
    let value: unknown = field.args.find((a) => a.name === arg)?.defaultValue;
    const literal = (v: ValueNode | undefined) => (v?.kind === Kind.INT ? Number(v.value) : undefined);
    if (argument?.kind === Kind.VARIABLE) {
      const name = argument.name.value;
      value = name in variables ? variables[name] : (literal(variableDefaults.get(name)) ?? value);
    } else if (argument) {
      value = literal(argument);
    }
    // A size the resolver will refuse costs nothing to run, but the checker does not second-guess it.
    return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= max ? (value as number) : max;
  };

  const fragmentSummary = (name: string): Summary => {
    const known = measured.get(name);
    if (known) return known;
    const fragment = fragments.get(name);
    // Unknown fragments and cycles are validation errors: refused there, they cost nothing here.
    if (!fragment || measuring.has(name)) return EMPTY;
    measuring.add(name);
    const summary = selectionSummary(fragment.selectionSet, schema.getType(fragment.typeCondition.name.value));
    measuring.delete(name);
    measured.set(name, summary);
    return summary;
  };

  const selectionSummary = (selectionSet: SelectionSetNode, parent: GraphQLNamedType | undefined | null): Summary => {
    const total = { ...EMPTY };
    const add = (part: Summary) => {
      total.cost += part.cost;
      total.listCost += part.listCost;
      total.aliases += part.aliases;
      total.passwordChecks += part.passwordChecks;
      total.refreshes += part.refreshes;
      total.depth = Math.max(total.depth, part.depth);
    };
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) add(fieldSummary(selection, parent));
      else if (selection.kind === Kind.INLINE_FRAGMENT) {
        add(
          selectionSummary(selection.selectionSet, selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent),
        );
      } else add(fragmentSummary(selection.name.value));
    }
    return total;
  };

  const fieldSummary = (node: FieldNode, parent: GraphQLNamedType | undefined | null): Summary => {
    const alias = node.alias ? 1 : 0;
    const name = node.name.value;
    if (name === '__typename') return { ...EMPTY, cost: COST_WEIGHTS.field, aliases: alias };
    const field = parent ? fieldOf(parent, name) : undefined;
    const cost = (field?.extensions?.cost ?? {}) as FieldCost;
    const children = node.selectionSet ? selectionSummary(node.selectionSet, field && getNamedType(field.type)) : EMPTY;
    const items = field && cost.page ? pageSize(node, field, cost.page) : 1;
    const own = COST_WEIGHTS.field + (cost.sql ?? 0) * COST_WEIGHTS.sql + (cost.hash ?? 0) * COST_WEIGHTS.hash;
    const subtree = own + children.cost + items * children.listCost;
    const isList = field !== undefined && isListType(getNullableType(field.type));
    const introspective = name.startsWith('__') || parent?.name.startsWith('__');
    return {
      depth: introspective ? children.depth : 1 + children.depth,
      cost: isList ? 0 : subtree,
      listCost: isList ? subtree : 0,
      aliases: alias + children.aliases,
      passwordChecks: (cost.attempt === 'password' ? 1 : 0) + children.passwordChecks,
      refreshes: (cost.attempt === 'refresh' ? 1 : 0) + children.refreshes,
    };
  };

  const root = schema.getRootType(operation.operation);
  const { listCost, ...measure } = selectionSummary(operation.selectionSet, root ?? undefined);
  return { ...measure, cost: measure.cost + listCost };
}

/** Unknown fields are validation errors: refused there, they count as one field here. */
function fieldOf(parent: GraphQLNamedType, name: string): GraphQLField<unknown, unknown> | undefined {
  if (name === '__schema') return SchemaMetaFieldDef;
  if (name === '__type') return TypeMetaFieldDef;
  return isObjectType(parent) || isInterfaceType(parent) ? parent.getFields()[name] : undefined;
}

const fmt = (n: number) => (n > Number.MAX_SAFE_INTEGER ? 'more than 9007199254740991' : String(n));

/**
 * Refuses an operation over any limit with QUERY_TOO_COMPLEX. A document the measure cannot evaluate is
 * refused too: it never runs unchecked. Returns the measure, whose cost the rate limits charge.
 */
export function checkOperation(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
  { maxDepth, maxCost, maxAliases }: QueryLimits,
): QueryMeasure {
  let measure: QueryMeasure;
  try {
    measure = measureOperation(schema, document, operation, variables);
  } catch (error) {
    // Nesting deeper than the stack: the token limit should make it impossible, but never run what was not checked.
    if (error instanceof RangeError) throw tooComplex('The query could not be checked against the limits');
    throw error;
  }
  const { depth, cost, aliases, passwordChecks, refreshes } = measure;
  if (passwordChecks + refreshes > MAX_ATTEMPTS_PER_REQUEST) {
    throw tooComplex('At most one signUp, signIn, refreshSession, changePassword or deleteAccount per request', {
      attempts: passwordChecks + refreshes,
      maxAttempts: MAX_ATTEMPTS_PER_REQUEST,
    });
  }
  if (depth > maxDepth) throw tooComplex(`The query is ${depth} levels deep; the limit is ${maxDepth}`, { depth, maxDepth });
  if (aliases > maxAliases)
    throw tooComplex(`The query has ${fmt(aliases)} aliases; the limit is ${maxAliases}`, {
      aliases: Math.min(aliases, Number.MAX_SAFE_INTEGER),
      maxAliases,
    });
  if (!(cost <= maxCost))
    throw tooComplex(`The query costs ${fmt(cost)}; the limit is ${maxCost}`, { cost: Math.min(cost, Number.MAX_SAFE_INTEGER), maxCost });
  return measure;
}
