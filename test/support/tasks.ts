import type { Api } from './api.js';

export const TASK_FIELDS = `id title description status priority tags dueDate completedAt isOverdue createdAt updatedAt owner { id email }`;

export interface TaskView {
  id: string;
  title: string;
  description: string | null;
  status: string;
  priority: string;
  tags: string[];
  dueDate: string | null;
  completedAt: string | null;
  isOverdue: boolean;
  createdAt: string;
  updatedAt: string;
  owner: { id: string; email: string };
}

export const CREATE_TASK = `mutation CreateTask($input: CreateTaskInput!) { createTask(input: $input) { ${TASK_FIELDS} } }`;
export const UPDATE_TASK = `mutation UpdateTask($id: ID!, $input: UpdateTaskInput!) { updateTask(id: $id, input: $input) { ${TASK_FIELDS} } }`;
export const COMPLETE_TASK = `mutation CompleteTask($id: ID!) { completeTask(id: $id) { ${TASK_FIELDS} } }`;
export const DELETE_TASK = `mutation DeleteTask($id: ID!) { deleteTask(id: $id) }`;
export const GET_TASK = `query Task($id: ID!) { task(id: $id) { ${TASK_FIELDS} } }`;
export const LIST_TASKS = `query Tasks($filter: TaskFilter, $orderBy: TaskOrder, $first: Int, $after: String) {
  tasks(filter: $filter, orderBy: $orderBy, first: $first, after: $after) {
    edges { cursor node { ${TASK_FIELDS} } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}`;

export interface Page {
  tasks: {
    edges: { cursor: string; node: TaskView }[];
    pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
    totalCount?: number;
  };
}

export async function createTask(client: Api, input: Record<string, unknown>): Promise<TaskView> {
  return (await client.ok<{ createTask: TaskView }>(CREATE_TASK, { input })).createTask;
}

/** Every task the client can list for `variables`, following cursors page by page. */
export async function listAll(client: Api, variables: Record<string, unknown>, pageSize = 100): Promise<TaskView[]> {
  const all: TaskView[] = [];
  let after: string | null = null;
  for (;;) {
    const { tasks }: Page = await client.ok<Page>(LIST_TASKS, { ...variables, first: pageSize, after });
    all.push(...tasks.edges.map((edge) => edge.node));
    if (!tasks.pageInfo.hasNextPage) return all;
    after = tasks.pageInfo.endCursor;
  }
}
