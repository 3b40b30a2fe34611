import { DateTimeResolver } from 'graphql-scalars';
import { printSchema, type GraphQLSchema } from 'graphql';
import { buildSchema, type NonEmptyArray } from 'type-graphql';
import { HealthResolver } from '../health/health.resolver.js';
import { TaskConnectionResolver, TaskResolver } from '../modules/tasks/task.resolver.js';
import { UserResolver } from '../modules/users/user.resolver.js';

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
export const resolvers: NonEmptyArray<Function> = [HealthResolver, UserResolver, TaskResolver, TaskConnectionResolver];

/** The TypeGraphQL schema; tests may add resolvers of their own. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
export function buildAppSchema(extra: Function[] = []): Promise<GraphQLSchema> {
  return buildSchema({
    resolvers: [...resolvers, ...extra],
    scalarsMap: [{ type: Date, scalar: DateTimeResolver }],
    validate: false,
  });
}

/** The SDL committed as `schema.graphql`, in declaration order (as the contract lists enum values). */
export function printAppSchema(schema: GraphQLSchema): string {
  return `${printSchema(schema)}\n`;
}
