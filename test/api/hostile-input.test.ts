import pg from 'pg';
import { api, SIGN_UP, signUpUser, uniqueEmail } from '../support/api.js';
import { serverForTests } from '../support/server.js';
import { CREATE_TASK, TASK_FIELDS, type TaskView } from '../support/tasks.js';
import { waitFor } from '../support/wait.js';
import { lockWaiters } from '../support/database.js';

type User = Awaited<ReturnType<typeof signUpUser>>;

const forge = (parts: unknown) => Buffer.from(JSON.stringify(parts)).toString('base64url');

describe('input PostgreSQL would refuse is the client’s error, never an internal one', () => {
  const t = serverForTests({ env: { NODE_ENV: 'production', JWT_SECRET: 'production-signing-key-0123456789-abcdef' } });
  let user: User;

  beforeAll(async () => {
    user = await signUpUser(t.server.url);
  });

  const fieldOf = async (document: string, variables?: Record<string, unknown>) => {
    const result = await user.api.request(document, variables);
    expect(result.errors).toHaveLength(1);
    expect(result.errors![0]!.extensions?.code).toBe('BAD_USER_INPUT');
    return result.errors![0]!.extensions?.field;
  };

  it.each(['0000-01-01T00:00:00Z', '-000001-01-01T00:00:00Z', '10000-01-01T00:00:00Z'])(
    'refuses the date %s outside the years 1 to 9999',
    async (date) => {
      const result = await user.api.request(CREATE_TASK, { input: { title: 'old', dueDate: date } });
      // A date graphql-scalars cannot even read is refused by Apollo as a bad variable (400); one it reads, by our rule.
      expect(result.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      if (result.status === 200) expect(result.errors![0]!.extensions?.field).toBe('dueDate');
    },
  );

  it('refuses dates out of range in updates and filters', async () => {
    const { createTask } = await user.api.ok<{ createTask: TaskView }>(CREATE_TASK, { input: { title: 'dated' } });
    expect(
      await fieldOf(`mutation($id: ID!) { updateTask(id: $id, input: { dueDate: "0000-06-01T00:00:00Z" }) { id } }`, { id: createTask.id }),
    ).toBe('dueDate');
    expect(await fieldOf(`{ tasks(filter: { dueBefore: "0000-06-01T00:00:00Z" }) { edges { cursor } } }`)).toBe('filter.dueBefore');
    expect(await fieldOf(`{ tasks(filter: { dueAfter: "0000-06-01T00:00:00Z" }) { edges { cursor } } }`)).toBe('filter.dueAfter');
  });

  it('refuses cursors with impossible dates, or from another ordering or direction', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    for (const after of [
      forge(['CREATED_AT', 'DESC', '0000-01-01T00:00:00.000Z', id]),
      forge(['CREATED_AT', 'DESC', '2026-02-31T00:00:00.000Z', id]),
      forge(['CREATED_AT', 'DESC', '+275760-09-13T00:00:00.000Z', id]),
    ]) {
      expect(await fieldOf(`query($after: String) { tasks(after: $after) { edges { cursor } } }`, { after })).toBe('after');
    }
    const byTitle = `query($after: String) { tasks(after: $after, orderBy: { field: TITLE, direction: ASC }) { edges { cursor } } }`;
    for (const title of ['a\u0000b', 'a\udc00', 'x'.repeat(201)]) {
      expect(await fieldOf(byTitle, { after: forge(['TITLE', 'ASC', title, id]) })).toBe('after');
    }
    await user.api.ok(CREATE_TASK, { input: { title: 'one' } });
    await user.api.ok(CREATE_TASK, { input: { title: 'two' } });
    const { tasks } = await user.api.ok<{ tasks: { pageInfo: { endCursor: string } } }>(`{ tasks(first: 1) { pageInfo { endCursor } } }`);
    const ascending = `query($after: String) { tasks(after: $after, orderBy: { field: CREATED_AT, direction: ASC }) { edges { cursor } } }`;
    expect(await fieldOf(ascending, { after: tasks.pageInfo.endCursor })).toBe('after');
  });

  it('refuses NUL characters in emails and names, and answers a sign-in with one as a wrong password', async () => {
    const signUp = async (input: Record<string, unknown>) => (await api(t.server.url).request(SIGN_UP, { input })).errors?.[0]?.extensions;
    expect(await signUp({ email: `a\u0000${uniqueEmail()}`, password: 'long enough password' })).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'email',
    });
    expect(await signUp({ email: uniqueEmail(), password: 'long enough password', name: 'Ann\u0000' })).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'name',
    });
    const signIn = `mutation($email: String!) { signIn(email: $email, password: "long enough password") { token } }`;
    expect(await api(t.server.url).code(signIn, { email: `x\u0000@example.com` })).toBe('UNAUTHENTICATED');
    const titled = await user.api.request(CREATE_TASK, { input: { title: 'a\u0000b' } });
    expect(titled.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'title' });
    // A lone surrogate would be stored as U+FFFD: the client would read back something else than it wrote.
    const surrogate = await user.api.request(CREATE_TASK, { input: { title: 'a\udc00', tags: ['ok'] } });
    expect(surrogate.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'title' });
    const tagged = await user.api.request(CREATE_TASK, { input: { title: 'fine', tags: ['\ud800x'] } });
    expect(tagged.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'tags' });
  });
});

describe('concurrent writes on one task', () => {
  const t = serverForTests();

  it('end with the last writer’s consistent row, never INTERNAL_SERVER_ERROR', async () => {
    const user = await signUpUser(t.server.url);
    const { createTask } = await user.api.ok<{ createTask: TaskView }>(CREATE_TASK, { input: { title: 'raced' } });
    const holder = new pg.Client({ connectionString: t.db.directUrl });
    await holder.connect();
    try {
      // The test holds the row; the completion queues first, then a change of status that read the same row.
      await holder.query('begin');
      await holder.query('select id from tasks where id = $1 for update', [createTask.id]);
      const complete = user.api.request<{ completeTask: TaskView }>(`mutation($id: ID!) { completeTask(id: $id) { ${TASK_FIELDS} } }`, {
        id: createTask.id,
      });
      await waitFor(async () => (await lockWaiters(holder)) === 1, 5000);
      const start = user.api.request<{ updateTask: TaskView }>(
        `mutation($id: ID!) { updateTask(id: $id, input: { status: IN_PROGRESS }) { ${TASK_FIELDS} } }`,
        { id: createTask.id },
      );
      await waitFor(async () => (await lockWaiters(holder)) === 2, 5000);
      await holder.query('commit');
      const [completed, started] = await Promise.all([complete, start]);
      expect(completed.errors).toBeUndefined();
      expect(started.errors).toBeUndefined();
      expect(started.data?.updateTask).toMatchObject({ status: 'IN_PROGRESS', completedAt: null });
    } finally {
      await holder.end();
    }
    const { task } = await user.api.ok<{ task: TaskView }>(`query($id: ID!) { task(id: $id) { status completedAt } }`, {
      id: createTask.id,
    });
    expect(task).toEqual({ status: 'IN_PROGRESS', completedAt: null });
  });
});
