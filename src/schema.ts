import { assertValidSchema, printSchema, type GraphQLObjectType, type GraphQLSchema } from 'graphql';
import { buildSchema, type NonEmptyArray, type PubSub } from 'type-graphql';
import { HealthResolver } from './health/health.resolver.js';
import { TaskConnectionResolver, TaskFeedResolver, TaskResolver } from './modules/tasks/index.js';
import { UserResolver } from './modules/users/index.js';
import { DateTimeScalar } from './graphql/date-time.js';

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
export const resolvers: NonEmptyArray<Function> = [HealthResolver, UserResolver, TaskResolver, TaskConnectionResolver, TaskFeedResolver];

/**
 * TypeGraphQL wants a PubSub as soon as there is a subscription, even one that brings its own source, as
 * `taskChanges` does (the change feed): there are no topics to publish to.
 */
const noTopics: PubSub = {
  publish: () => {
    throw new Error('no topic-based subscriptions: taskChanges reads the change feed');
  },
  subscribe: () => {
    throw new Error('no topic-based subscriptions: taskChanges reads the change feed');
  },
};

/** What the root types say of themselves in the schema (TypeGraphQL has no option for it). */
const ROOT_DESCRIPTIONS: [(schema: GraphQLSchema) => GraphQLObjectType | null | undefined, string][] = [
  [(schema) => schema.getQueryType(), 'Reads. Everything but health and me needs `Authorization: Bearer <token>`'],
  [
    (schema) => schema.getMutationType(),
    'Writes. Each answers what it committed; one that fails writes nothing. Besides the errors each lists, any may answer ' +
      'RATE_LIMITED (the cost budget), QUERY_TOO_COMPLEX, DATABASE_UNAVAILABLE (try again) or INTERNAL_SERVER_ERROR',
  ],
  [
    (schema) => schema.getSubscriptionType(),
    'Live changes, over WebSocket (graphql-transport-ws on /graphql) or Server-Sent Events (/graphql/stream)',
  ],
];

/** The TypeGraphQL schema; tests may add resolvers of their own. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
export async function buildAppSchema(extra: Function[] = []): Promise<GraphQLSchema> {
  const schema = await buildSchema({
    resolvers: [...resolvers, ...extra],
    scalarsMap: [{ type: Date, scalar: DateTimeScalar }],
    validate: false,
    pubSub: noTopics,
    // TypeGraphQL would check the schema by running the whole introspection query on it, about 35 ms of each start.
    // graphql's own validation (below) finds a malformed schema in a tenth of that; the one thing only the query
    // would meet, a default value that cannot be printed, fails test/api/schema.test.ts, which prints the schema.
    skipCheck: true,
  });
  // Every Task value has `isOverdue` as a property (records compute it, the entity has a getter). TypeGraphQL gives
  // a getter field a resolver that first turns the value into a Task instance, which a record is not: read it as is.
  (schema.getType('Task') as GraphQLObjectType).getFields().isOverdue!.resolve = undefined;
  for (const [root, description] of ROOT_DESCRIPTIONS) {
    const type = root(schema);
    if (type) type.description = description;
  }
  assertValidSchema(schema);
  return schema;
}

/** The SDL committed as `schema.graphql`, in declaration order (as the contract lists enum values). */
export function printAppSchema(schema: GraphQLSchema): string {
  return `${printSchema(schema)}\n`;
}
