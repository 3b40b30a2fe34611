import { signUpUser } from '../support/api.js';
import { serverForTests } from '../support/server.js';
import { wsSession } from '../support/subscriptions.js';
import { waitFor } from '../support/wait.js';

const FIELDS = 'id version title tags status';
const CREATE = `mutation ($input: CreateTaskInput!) { createTask(input: $input) { ${FIELDS} } }`;
const UPDATE = `mutation ($id: ID!, $input: UpdateTaskInput!, $v: Int) { updateTask(id: $id, input: $input, expectedVersion: $v) { ${FIELDS} } }`;
const COMPLETE = `mutation ($id: ID!, $v: Int) { completeTask(id: $id, expectedVersion: $v) { ${FIELDS} } }`;
const DELETE = `mutation ($id: ID!, $v: Int) { deleteTask(id: $id, expectedVersion: $v) }`;
const GET = `query ($id: ID!) { task(id: $id) { ${FIELDS} } }`;

interface TaskView {
  id: string;
  version: number;
  title: string;
  tags: string[];
  status: string;
}

describe('task versions', () => {
  const t = serverForTests();
  const changesOf = async (taskId: string) =>
    Number((await t.db.query<{ n: string }>('select count(*) as n from task_changes where task_id = $1', [taskId])).rows[0]!.n);

  it('start at 1 and grow by one with every committed change, completion included; a change that changes nothing keeps it', async () => {
    const user = await signUpUser(t.server.url);
    const session = wsSession(t.server.url, user.token);
    const received = session.subscribe({}, 'subscription { taskChanges { kind task { version } } }');
    await waitFor(() => t.server.feed.size === 1);
    const { createTask: task } = await user.api.ok<{ createTask: TaskView }>(CREATE, { input: { title: 'one' } });
    expect(task.version).toBe(1);
    expect((await user.api.ok<{ updateTask: TaskView }>(UPDATE, { id: task.id, input: { title: 'two' } })).updateTask.version).toBe(2);
    expect((await user.api.ok<{ completeTask: TaskView }>(COMPLETE, { id: task.id })).completeTask.version).toBe(3);
    // Completing a completed task, or setting a title it has, writes nothing.
    expect((await user.api.ok<{ completeTask: TaskView }>(COMPLETE, { id: task.id })).completeTask.version).toBe(3);
    expect((await user.api.ok<{ updateTask: TaskView }>(UPDATE, { id: task.id, input: { title: 'two' } })).updateTask.version).toBe(3);
    // A repair by hand counts too.
    await t.db.query(`update tasks set title = 'by hand' where id = $1`, [task.id]);
    expect((await user.api.ok<{ task: TaskView }>(GET, { id: task.id })).task.version).toBe(4);
    // The change events carry the version each change committed.
    const changes = await received.take(4);
    expect(changes.map((change) => [change.kind, (change.task as { version?: number } | null)?.version])).toEqual([
      ['CREATED', 1],
      ['UPDATED', 2],
      ['UPDATED', 3],
      ['UPDATED', 4],
    ]);
    await session.close();
    await waitFor(() => t.server.feed.size === 0);
  });

  it('refuse a stale expectedVersion on update, completion and deletion with CONFLICT and the current version, writing nothing', async () => {
    const user = await signUpUser(t.server.url);
    const { createTask: task } = await user.api.ok<{ createTask: TaskView }>(CREATE, { input: { title: 'kept', tags: ['a'] } });
    await user.api.ok(UPDATE, { id: task.id, input: { tags: ['a', 'b'] }, v: 1 });
    const logged = await changesOf(task.id);
    for (const [document, variables] of [
      [UPDATE, { id: task.id, input: { title: 'lost' }, v: 1 }],
      [COMPLETE, { id: task.id, v: 1 }],
      [DELETE, { id: task.id, v: 3 }],
    ] as const) {
      const { errors } = await user.api.request(document, variables);
      expect(errors?.map((error) => [error.extensions?.code, error.extensions?.currentVersion])).toEqual([['CONFLICT', 2]]);
    }
    expect((await user.api.ok<{ task: TaskView }>(GET, { id: task.id })).task).toMatchObject({
      version: 2,
      title: 'kept',
      tags: ['a', 'b'],
      status: 'PENDING',
    });
    expect(await changesOf(task.id)).toBe(logged);
    // The current version is accepted, and without one the last writer wins as before.
    expect((await user.api.ok<{ completeTask: TaskView }>(COMPLETE, { id: task.id, v: 2 })).completeTask.version).toBe(3);
    expect((await user.api.ok<{ updateTask: TaskView }>(UPDATE, { id: task.id, input: { title: 'last' } })).updateTask.version).toBe(4);
    expect(await user.api.ok(DELETE, { id: task.id, v: 4 })).toEqual({ deleteTask: task.id });
  });

  it('let exactly one of two devices editing the same version win; the other is told, and its edit is not lost silently', async () => {
    const user = await signUpUser(t.server.url);
    const { createTask: task } = await user.api.ok<{ createTask: TaskView }>(CREATE, { input: { title: 'shared', tags: ['a'] } });
    const [work, home] = await Promise.all([
      user.api.request<{ updateTask: TaskView }>(UPDATE, { id: task.id, input: { tags: ['a', 'work'] }, v: 1 }),
      user.api.request<{ updateTask: TaskView }>(UPDATE, { id: task.id, input: { tags: ['a', 'home'] }, v: 1 }),
    ]);
    const outcomes = [work, home].map((result) => result.errors?.[0]?.extensions?.code ?? 'ok').sort();
    expect(outcomes).toEqual(['CONFLICT', 'ok']);
    const winner = (work.data?.updateTask ?? home.data?.updateTask)!;
    expect(winner.version).toBe(2);
    expect((await user.api.ok<{ task: TaskView }>(GET, { id: task.id })).task).toEqual(winner);
  });

  it('keep another user’s task out of reach whatever the version', async () => {
    const [owner, other] = [await signUpUser(t.server.url), await signUpUser(t.server.url)];
    const { createTask: task } = await owner.api.ok<{ createTask: TaskView }>(CREATE, { input: { title: 'mine' } });
    expect(await other.api.code(UPDATE, { id: task.id, input: { title: 'theirs' }, v: 1 })).toBe('NOT_FOUND');
    expect(await other.api.code(COMPLETE, { id: task.id, v: 99 })).toBe('NOT_FOUND');
  });
});
