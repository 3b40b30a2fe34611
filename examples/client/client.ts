// A frontend's view of the API: typed operations generated from schema.graphql (`npm run codegen`), sent by
// their sha256 (`documentId`) from the persisted-documents manifest codegen writes beside them, so that a
// server started with TRUSTED_DOCUMENTS=examples/client/gql/persisted-documents.json runs them and nothing else.
// `npm run typecheck` proves that this compiles against the generated types.
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { CompleteTaskDocument, CreateTaskDocument, SignUpDocument, TaskPageDocument } from './gql/graphql.js';
import type { TaskCardFragment, TaskPageQuery } from './gql/graphql.js';

export class ApiError extends Error {
  constructor(readonly errors: { message: string; extensions?: { code?: string } }[]) {
    super(errors.map((error) => error.message).join('; '));
  }
}

/** Sends an operation by its hash: the document's text never travels, and the server looks it up. */
export function persistedClient(url: string, token?: string) {
  return async <Result, Variables>(document: TypedDocumentNode<Result, Variables>, variables: Variables): Promise<Result> => {
    const { hash } = (document as { __meta__?: { hash: string } }).__meta__ ?? {};
    if (!hash) throw new Error('the document has no hash: generate it with persistedDocuments on');
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ documentId: hash, variables }),
    });
    const { data, errors } = (await response.json()) as { data?: Result; errors?: ConstructorParameters<typeof ApiError>[0] };
    if (errors?.length || !data) throw new ApiError(errors ?? [{ message: `HTTP ${response.status}` }]);
    return data;
  };
}

export async function firstOverduePage(url: string, email: string, password: string): Promise<TaskCardFragment[]> {
  const { signUp } = await persistedClient(url)(SignUpDocument, { input: { email, password } });
  const request = persistedClient(url, signUp.token);

  const done = await request(CreateTaskDocument, { input: { title: 'Call the bank', priority: 'HIGH', tags: ['admin'], dueDate: '2020-01-01T00:00:00Z' } });
  await request(CompleteTaskDocument, { id: done.createTask.id });
  await request(CreateTaskDocument, { input: { title: 'Renew the passport', tags: ['admin'], dueDate: '2020-02-02T00:00:00Z' } });

  const page: TaskPageQuery = await request(TaskPageDocument, {
    filter: { overdue: true },
    orderBy: { field: 'DUE_DATE', direction: 'ASC' },
    first: 20,
  });
  return page.tasks.edges.map((edge) => edge.node);
}
