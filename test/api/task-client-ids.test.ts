import { randomUUID } from 'node:crypto';
import { api, signUpUser } from '../support/api.js';
import { instancesForTests } from '../support/server.js';

const SECRET = 'shared-signing-key-for-every-instance-0123';
const CREATE = `mutation ($input: CreateTaskInput!) { createTask(input: $input) { id version title createdAt } }`;

interface Created {
  id: string;
  version: number;
  title: string;
  createdAt: string;
}

describe('createTask with an id the client chose', () => {
  const t = instancesForTests(SECRET);
  const rowsOf = async (table: 'tasks' | 'task_changes', id: string) =>
    Number(
      (await t.db.query<{ n: string }>(`select count(*) as n from ${table} where ${table === 'tasks' ? 'id' : 'task_id'} = $1`, [id]))
        .rows[0]!.n,
    );

  it('makes one task and one CREATED change however many times it is sent, racing on two instances', async () => {
    const user = await signUpUser(t.a.url);
    const id = randomUUID();
    const clients = [api(t.a.url, user.token), api(t.b.url, user.token)];
    const answers = await Promise.all(
      Array.from({ length: 5 }, (_, i) => clients[i % 2]!.ok<{ createTask: Created }>(CREATE, { input: { id, title: `attempt ${i}` } })),
    );
    const tasks = answers.map((answer) => answer.createTask);
    expect(new Set(tasks.map((task) => JSON.stringify(task))).size).toBe(1);
    expect(tasks[0]).toMatchObject({ id, version: 1 });
    expect(await rowsOf('tasks', id)).toBe(1);
    expect(await rowsOf('task_changes', id)).toBe(1);
  });

  it('answers a retry with the task as it is now, writing nothing', async () => {
    const user = await signUpUser(t.a.url);
    const id = randomUUID();
    await user.api.ok(CREATE, { input: { id, title: 'first' } });
    await user.api.ok(`mutation ($id: ID!) { updateTask(id: $id, input: { title: "edited" }) { id } }`, { id });
    const retried = (await api(t.b.url, user.token).ok<{ createTask: Created }>(CREATE, { input: { id, title: 'first' } })).createTask;
    expect(retried).toMatchObject({ id, title: 'edited', version: 2 });
    expect(await rowsOf('task_changes', id)).toBe(2);
  });

  it('refuses an id that names another user’s task with CONFLICT, saying nothing of it, and one that is not a UUID', async () => {
    const [owner, other] = [await signUpUser(t.a.url), await signUpUser(t.a.url)];
    const id = randomUUID();
    await owner.api.ok(CREATE, { input: { id, title: 'private' } });
    const taken = await other.api.request(CREATE, { input: { id, title: 'mine now?' } });
    expect(taken.errors?.map((error) => error.extensions?.code)).toEqual(['CONFLICT']);
    expect(JSON.stringify(taken)).not.toContain('private');
    expect(await rowsOf('tasks', id)).toBe(1);
    const malformed = await owner.api.request(CREATE, { input: { id: 'not-a-uuid', title: 'x' } });
    expect(malformed.errors?.map((error) => [error.extensions?.code, error.extensions?.field])).toEqual([['BAD_USER_INPUT', 'id']]);
  });

  it('keeps choosing the id itself when the client does not', async () => {
    const user = await signUpUser(t.a.url);
    const [one, two] = await Promise.all([
      user.api.ok<{ createTask: Created }>(CREATE, { input: { title: 'a' } }),
      user.api.ok<{ createTask: Created }>(CREATE, { input: { title: 'a' } }),
    ]);
    expect(one.createTask.id).not.toBe(two.createTask.id);
  });
});
