// The lean baseline: graphql-js resolvers over a raw pg pool, served by graphql-http. Same operations, same
// SQL, none of TypeGraphQL, MikroORM, Apollo or Express.
import { createServer } from 'node:http';
import { buildSchema, type GraphQLResolveInfo } from 'graphql';
import { createHandler } from 'graphql-http/lib/use/http';
import { createTask, health, tasks, userIdFrom } from './sql.js';

const schema = buildSchema(/* GraphQL */ `
  type Query {
    health: Health!
    tasks(first: Int = 20, filter: TaskFilter): TaskConnection!
  }
  type Mutation {
    createTask(input: CreateTaskInput!): Task!
  }
  type Health {
    status: String!
  }
  input TaskFilter {
    tagsAny: [String!]
    status: [String!]
  }
  input CreateTaskInput {
    title: String!
  }
  type User {
    id: ID!
    email: String!
  }
  type Task {
    id: ID!
    title: String!
    description: String
    status: String!
    priority: String!
    tags: [String!]!
    dueDate: String
    completedAt: String
    isOverdue: Boolean!
    createdAt: String!
    updatedAt: String!
    owner: User!
  }
  type TaskEdge {
    cursor: String!
    node: Task!
  }
  type PageInfo {
    hasNextPage: Boolean!
    endCursor: String
  }
  type TaskConnection {
    edges: [TaskEdge!]!
    pageInfo: PageInfo!
    totalCount: Int
  }
`);

const selects = (info: GraphQLResolveInfo, field: string) =>
  info.fieldNodes.some((node) => node.selectionSet?.selections.some((s) => s.kind === 'Field' && s.name.value === field));

const rootValue = {
  health: () => health(),
  tasks: async (
    args: { first: number; filter?: { tagsAny?: string[]; status?: string[] } },
    context: { userId: string | null },
    info: GraphQLResolveInfo,
  ) => {
    if (!context.userId) throw new Error('UNAUTHENTICATED');
    return tasks(context.userId, args.first, args.filter, selects(info, 'totalCount'));
  },
  createTask: (args: { input: { title: string } }, context: { userId: string | null }) => {
    if (!context.userId) throw new Error('UNAUTHENTICATED');
    return createTask(context.userId, args.input.title);
  },
};

const handler = createHandler({
  schema,
  rootValue,
  context: async (req) => ({ userId: await userIdFrom(req.raw.headers.authorization) }),
});

createServer((req, res) => {
  if (req.url?.startsWith('/graphql')) return void handler(req, res);
  res.writeHead(req.url === '/health/ready' ? 200 : 404).end();
}).listen(Number(process.env.PORT), '127.0.0.1');
