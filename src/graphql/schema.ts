import { printSchema, type GraphQLObjectType, type GraphQLSchema } from 'graphql';
import { buildSchema, type NonEmptyArray, type PubSub } from 'type-graphql';
import { HealthResolver } from '../health/health.resolver.js';
import { TaskFeedResolver } from '../modules/tasks/task.feed.js';
import { TaskConnectionResolver, TaskResolver } from '../modules/tasks/task.resolver.js';
import { UserResolver } from '../modules/users/user.resolver.js';
import { DateTimeScalar } from './date-time.js';

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

/** The TypeGraphQL schema; tests may add resolvers of their own. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
export async function buildAppSchema(extra: Function[] = []): Promise<GraphQLSchema> {
  const schema = await buildSchema({
    resolvers: [...resolvers, ...extra],
    scalarsMap: [{ type: Date, scalar: DateTimeScalar }],
    validate: false,
    pubSub: noTopics,
  });
  // Every Task value has `isOverdue` as a property (records compute it, the entity has a getter). TypeGraphQL gives
  // a getter field a resolver that first turns the value into a Task instance, which a record is not: read it as is.
  (schema.getType('Task') as GraphQLObjectType).getFields().isOverdue!.resolve = undefined;
  return schema;
}

/** The SDL committed as `schema.graphql`, in declaration order (as the contract lists enum values). */
export function printAppSchema(schema: GraphQLSchema): string {
  return `${printSchema(schema)}\n`;
}
