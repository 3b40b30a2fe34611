// A frontend's view of the API: typed operations generated from schema.graphql (`npm run codegen`),
// sent with graphql-request. `npm run typecheck` proves that this compiles against the generated types.
import { GraphQLClient } from 'graphql-request';
import { CompleteTaskDocument, CreateTaskDocument, SignInDocument, TaskPageDocument } from './gql/graphql.js';
import type { TaskCardFragment, TaskPageQuery } from './gql/graphql.js';

export async function firstOverduePage(url: string, email: string, password: string): Promise<TaskCardFragment[]> {
  const anonymous = new GraphQLClient(url);
  const { signIn } = await anonymous.request(SignInDocument, { email, password });
  const client = new GraphQLClient(url, { headers: { authorization: `Bearer ${signIn.token}` } });

  const created = await client.request(CreateTaskDocument, { input: { title: 'Call the bank', priority: 'HIGH', tags: ['admin'] } });
  await client.request(CompleteTaskDocument, { id: created.createTask.id });

  const page: TaskPageQuery = await client.request(TaskPageDocument, {
    filter: { overdue: true },
    orderBy: { field: 'DUE_DATE', direction: 'ASC' },
    first: 20,
  });
  return page.tasks.edges.map((edge) => edge.node);
}
