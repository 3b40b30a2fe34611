import { MIGRATIONS_DIR } from '../../src/db/orm-options.js';
import { shippedMigrations } from '../../src/db/migration-files.js';
import { api, signUpUser } from '../support/api.js';
import { instancesForTests } from '../support/server.js';
import { createTask, GET_TASK, UPDATE_TASK, type TaskView } from '../support/tasks.js';

const SECRET = 'shared-signing-key-for-every-instance-0123';

describe('two instances on one database, sharing nothing else', () => {
  const t = instancesForTests(SECRET);

  it('migrated once, and both report OK', async () => {
    const shipped = shippedMigrations(MIGRATIONS_DIR);
    const { rows } = await t.db.query('select name from mikro_orm_migrations');
    expect(rows).toHaveLength(shipped.length);
    const applied = [t.a, t.b].map((server) => server.logs.find((line) => line.component === 'migrations')?.applied as string[]);
    expect(applied.flat()).toHaveLength(shipped.length);
    for (const server of [t.a, t.b])
      expect((await server.gql(`{ health { status } }`)).body).toEqual({ data: { health: { status: 'OK' } } });
  });

  it('accept each other’s tokens and see each other’s writes', async () => {
    const user = await signUpUser(t.a.url);
    const onB = api(t.b.url, user.token);
    expect(await onB.ok(`{ me { id } }`)).toEqual({ me: { id: user.user.id } });
    const task = await createTask(user.api, { title: 'made on A' });
    const { updateTask } = await onB.ok<{ updateTask: TaskView }>(UPDATE_TASK, { id: task.id, input: { title: 'changed on B' } });
    expect(updateTask.title).toBe('changed on B');
    expect((await user.api.ok<{ task: TaskView }>(GET_TASK, { id: task.id })).task.title).toBe('changed on B');
  });

  it('refuse a duplicate sign-up whichever instance gets it, even at the same moment', async () => {
    const email = `race-${Date.now()}@example.com`;
    const input = { input: { email, password: 'a-long-password' } };
    const mutation = `mutation($input: SignUpInput!) { signUp(input: $input) { user { id } } }`;
    const results = await Promise.all([api(t.a.url).request(mutation, input), api(t.b.url).request(mutation, input)]);
    const codes = results.map((r) => r.errors?.[0]?.extensions?.code ?? 'ok').sort();
    expect(codes).toEqual(['CONFLICT', 'ok']);
  });
});
