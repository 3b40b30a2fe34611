/* eslint-disable */
import * as types from './graphql.js';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "mutation SignIn($email: String!, $password: String!) {\n  signIn(email: $email, password: $password) {\n    token\n    expiresAt\n    user {\n      id\n      email\n      name\n    }\n  }\n}\n\nquery Me {\n  me {\n    id\n    email\n  }\n}\n\nmutation SignUp($input: SignUpInput!) {\n  signUp(input: $input) {\n    token\n    user {\n      id\n      email\n    }\n  }\n}": typeof types.SignInDocument,
    "fragment TaskCard on Task {\n  id\n  version\n  title\n  status\n  priority\n  tags\n  dueDate\n  isOverdue\n}\n\nquery TaskPage($filter: TaskFilter, $orderBy: TaskOrder, $first: Int, $after: String) {\n  tasks(filter: $filter, orderBy: $orderBy, first: $first, after: $after) {\n    totalCount\n    edges {\n      cursor\n      node {\n        ...TaskCard\n        owner {\n          email\n        }\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}\n\nquery TaskList($first: Int, $after: String) {\n  tasks(first: $first, after: $after) {\n    changesCursor\n    edges {\n      node {\n        ...TaskCard\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}\n\nmutation CreateTask($input: CreateTaskInput!) {\n  createTask(input: $input) {\n    ...TaskCard\n  }\n}\n\nmutation CompleteTask($id: ID!) {\n  completeTask(id: $id) {\n    id\n    status\n    completedAt\n  }\n}\n\nquery Task($id: ID!) {\n  task(id: $id) {\n    ...TaskCard\n  }\n}\n\nmutation UpdateTask($id: ID!, $input: UpdateTaskInput!, $expectedVersion: Int) {\n  updateTask(id: $id, input: $input, expectedVersion: $expectedVersion) {\n    ...TaskCard\n  }\n}\n\nsubscription TaskChanges($after: String) {\n  taskChanges(after: $after) {\n    cursor\n    kind\n    taskId\n    at\n    task {\n      ...TaskCard\n    }\n  }\n}\n\nmutation DeleteTask($id: ID!, $expectedVersion: Int) {\n  deleteTask(id: $id, expectedVersion: $expectedVersion)\n}": typeof types.TaskCardFragmentDoc,
};
const documents: Documents = {
    "mutation SignIn($email: String!, $password: String!) {\n  signIn(email: $email, password: $password) {\n    token\n    expiresAt\n    user {\n      id\n      email\n      name\n    }\n  }\n}\n\nquery Me {\n  me {\n    id\n    email\n  }\n}\n\nmutation SignUp($input: SignUpInput!) {\n  signUp(input: $input) {\n    token\n    user {\n      id\n      email\n    }\n  }\n}": types.SignInDocument,
    "fragment TaskCard on Task {\n  id\n  version\n  title\n  status\n  priority\n  tags\n  dueDate\n  isOverdue\n}\n\nquery TaskPage($filter: TaskFilter, $orderBy: TaskOrder, $first: Int, $after: String) {\n  tasks(filter: $filter, orderBy: $orderBy, first: $first, after: $after) {\n    totalCount\n    edges {\n      cursor\n      node {\n        ...TaskCard\n        owner {\n          email\n        }\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}\n\nquery TaskList($first: Int, $after: String) {\n  tasks(first: $first, after: $after) {\n    changesCursor\n    edges {\n      node {\n        ...TaskCard\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}\n\nmutation CreateTask($input: CreateTaskInput!) {\n  createTask(input: $input) {\n    ...TaskCard\n  }\n}\n\nmutation CompleteTask($id: ID!) {\n  completeTask(id: $id) {\n    id\n    status\n    completedAt\n  }\n}\n\nquery Task($id: ID!) {\n  task(id: $id) {\n    ...TaskCard\n  }\n}\n\nmutation UpdateTask($id: ID!, $input: UpdateTaskInput!, $expectedVersion: Int) {\n  updateTask(id: $id, input: $input, expectedVersion: $expectedVersion) {\n    ...TaskCard\n  }\n}\n\nsubscription TaskChanges($after: String) {\n  taskChanges(after: $after) {\n    cursor\n    kind\n    taskId\n    at\n    task {\n      ...TaskCard\n    }\n  }\n}\n\nmutation DeleteTask($id: ID!, $expectedVersion: Int) {\n  deleteTask(id: $id, expectedVersion: $expectedVersion)\n}": types.TaskCardFragmentDoc,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation SignIn($email: String!, $password: String!) {\n  signIn(email: $email, password: $password) {\n    token\n    expiresAt\n    user {\n      id\n      email\n      name\n    }\n  }\n}\n\nquery Me {\n  me {\n    id\n    email\n  }\n}\n\nmutation SignUp($input: SignUpInput!) {\n  signUp(input: $input) {\n    token\n    user {\n      id\n      email\n    }\n  }\n}"): (typeof documents)["mutation SignIn($email: String!, $password: String!) {\n  signIn(email: $email, password: $password) {\n    token\n    expiresAt\n    user {\n      id\n      email\n      name\n    }\n  }\n}\n\nquery Me {\n  me {\n    id\n    email\n  }\n}\n\nmutation SignUp($input: SignUpInput!) {\n  signUp(input: $input) {\n    token\n    user {\n      id\n      email\n    }\n  }\n}"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "fragment TaskCard on Task {\n  id\n  version\n  title\n  status\n  priority\n  tags\n  dueDate\n  isOverdue\n}\n\nquery TaskPage($filter: TaskFilter, $orderBy: TaskOrder, $first: Int, $after: String) {\n  tasks(filter: $filter, orderBy: $orderBy, first: $first, after: $after) {\n    totalCount\n    edges {\n      cursor\n      node {\n        ...TaskCard\n        owner {\n          email\n        }\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}\n\nquery TaskList($first: Int, $after: String) {\n  tasks(first: $first, after: $after) {\n    changesCursor\n    edges {\n      node {\n        ...TaskCard\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}\n\nmutation CreateTask($input: CreateTaskInput!) {\n  createTask(input: $input) {\n    ...TaskCard\n  }\n}\n\nmutation CompleteTask($id: ID!) {\n  completeTask(id: $id) {\n    id\n    status\n    completedAt\n  }\n}\n\nquery Task($id: ID!) {\n  task(id: $id) {\n    ...TaskCard\n  }\n}\n\nmutation UpdateTask($id: ID!, $input: UpdateTaskInput!, $expectedVersion: Int) {\n  updateTask(id: $id, input: $input, expectedVersion: $expectedVersion) {\n    ...TaskCard\n  }\n}\n\nsubscription TaskChanges($after: String) {\n  taskChanges(after: $after) {\n    cursor\n    kind\n    taskId\n    at\n    task {\n      ...TaskCard\n    }\n  }\n}\n\nmutation DeleteTask($id: ID!, $expectedVersion: Int) {\n  deleteTask(id: $id, expectedVersion: $expectedVersion)\n}"): (typeof documents)["fragment TaskCard on Task {\n  id\n  version\n  title\n  status\n  priority\n  tags\n  dueDate\n  isOverdue\n}\n\nquery TaskPage($filter: TaskFilter, $orderBy: TaskOrder, $first: Int, $after: String) {\n  tasks(filter: $filter, orderBy: $orderBy, first: $first, after: $after) {\n    totalCount\n    edges {\n      cursor\n      node {\n        ...TaskCard\n        owner {\n          email\n        }\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}\n\nquery TaskList($first: Int, $after: String) {\n  tasks(first: $first, after: $after) {\n    changesCursor\n    edges {\n      node {\n        ...TaskCard\n      }\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}\n\nmutation CreateTask($input: CreateTaskInput!) {\n  createTask(input: $input) {\n    ...TaskCard\n  }\n}\n\nmutation CompleteTask($id: ID!) {\n  completeTask(id: $id) {\n    id\n    status\n    completedAt\n  }\n}\n\nquery Task($id: ID!) {\n  task(id: $id) {\n    ...TaskCard\n  }\n}\n\nmutation UpdateTask($id: ID!, $input: UpdateTaskInput!, $expectedVersion: Int) {\n  updateTask(id: $id, input: $input, expectedVersion: $expectedVersion) {\n    ...TaskCard\n  }\n}\n\nsubscription TaskChanges($after: String) {\n  taskChanges(after: $after) {\n    cursor\n    kind\n    taskId\n    at\n    task {\n      ...TaskCard\n    }\n  }\n}\n\nmutation DeleteTask($id: ID!, $expectedVersion: Int) {\n  deleteTask(id: $id, expectedVersion: $expectedVersion)\n}"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;