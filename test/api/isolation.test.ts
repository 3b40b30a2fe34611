import { signUpUser } from '../support/api.js';
import { serverForTests } from '../support/server.js';
import { COMPLETE_TASK, createTask, DELETE_TASK, GET_TASK, listAll, UPDATE_TASK, type TaskView } from '../support/tasks.js';

type User = Awaited<ReturnType<typeof signUpUser>>;
const MISSING = '00000000-0000-4000-8000-000000000000';

describe('a user sees and changes only their own tasks', () => {
  const t = serverForTests();
  let alice: User;
  let bob: User;
  let bobsTask: TaskView;

  beforeAll(async () => {
    alice = await signUpUser(t.server.url);
    bob = await signUpUser(t.server.url);
    await createTask(alice.api, { title: 'Alice shops', tags: ['shared-tag'] });
    bobsTask = await createTask(bob.api, {
      title: 'Bob secret plan',
      tags: ['shared-tag', 'bob-only'],
      description: 'secret',
      dueDate: '2020-01-01T00:00:00Z',
    });
  });

  /** The whole answer, but the path, which names the operation asked. */
  const answer = async (document: string, variables: Record<string, unknown>) => {
    const { status, data, errors } = await alice.api.request(document, variables);
    return { status, data, errors: errors?.map(({ message, extensions }) => ({ message, extensions })) };
  };

  it('task: another user’s id is null, exactly like a missing one', async () => {
    expect(await answer(GET_TASK, { id: bobsTask.id })).toEqual(await answer(GET_TASK, { id: MISSING }));
    expect((await answer(GET_TASK, { id: bobsTask.id })).data).toEqual({ task: null });
  });

  it('updateTask, completeTask, deleteTask: NOT_FOUND, exactly like a missing id, and nothing changes', async () => {
    for (const [document, variables] of [
      [UPDATE_TASK, { input: { title: 'Hijacked', description: null } }],
      [COMPLETE_TASK, {}],
      [DELETE_TASK, {}],
    ] as const) {
      const theirs = await answer(document, { ...variables, id: bobsTask.id });
      expect(theirs.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
      expect(theirs).toEqual(await answer(document, { ...variables, id: MISSING }));
    }
    const { rows } = await t.db.query('select title, description, status, completed_at from tasks where id = $1', [bobsTask.id]);
    expect(rows[0]).toEqual({ title: 'Bob secret plan', description: 'secret', status: 'PENDING', completed_at: null });
  });

  it('tasks: no filter can widen the owner condition', async () => {
    const filters = [
      {},
      { tagsAny: ['bob-only', 'shared-tag'] },
      { tagsAll: ['bob-only'] },
      { search: 'secret' },
      { search: "' or 1=1 --" },
      { overdue: true },
      { status: ['PENDING', 'IN_PROGRESS', 'COMPLETED'], priority: ['LOW', 'MEDIUM', 'HIGH', 'URGENT'] },
    ];
    for (const filter of filters) {
      const listed = await listAll(alice.api, { filter });
      expect(listed.every((task) => task.owner.id === alice.user.id)).toBe(true);
      expect(listed.map((task) => task.id)).not.toContain(bobsTask.id);
    }
    const { tasks } = await alice.api.ok<{ tasks: { totalCount: number } }>(
      `{ tasks(filter: { tagsAny: ["shared-tag", "bob-only"] }) { totalCount } }`,
    );
    expect(tasks.totalCount).toBe(1);
  });

  it('a cursor made from another user’s task reveals nothing of theirs', async () => {
    const cursor = Buffer.from(JSON.stringify(['CREATED_AT', 'DESC', bobsTask.createdAt, bobsTask.id])).toString('base64url');
    const listed = await alice.api.ok<{ tasks: { edges: { node: { id: string } }[] } }>(
      `query($after: String) { tasks(after: $after) { edges { node { id } } } }`,
      { after: cursor },
    );
    expect(listed.tasks.edges.map((e) => e.node.id)).not.toContain(bobsTask.id);
  });

  it('me is the caller', async () => {
    expect(await alice.api.ok(`{ me { id } }`)).toEqual({ me: { id: alice.user.id } });
    expect(await bob.api.ok(`{ me { id } }`)).toEqual({ me: { id: bob.user.id } });
  });
});
