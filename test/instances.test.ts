import { MIGRATIONS_DIR } from '../src/db/orm-options.js';
import { shippedMigrations } from '../src/health/migration-files.js';
import { api, signUpUser } from './support/api.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { startTestServer, type TestServer } from './support/server.js';
import { createTask, GET_TASK, UPDATE_TASK, type TaskView } from './support/tasks.js';

const SECRET = 'shared-signing-key-for-every-instance-0123';

describe('two instances on one database, sharing nothing else', () => {
  let db: TestDatabase;
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    db = await createTestDatabase();
    // Started together on an empty database: they migrate once between them.
    [a, b] = await Promise.all([
      startTestServer({ databaseUrl: db.url, env: { JWT_SECRET: SECRET } }),
      startTestServer({ databaseUrl: db.url, env: { JWT_SECRET: SECRET } }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([a.stop(), b.stop()]);
    await db.drop();
  });

  it('migrated once, and both report OK', async () => {
    const shipped = shippedMigrations(MIGRATIONS_DIR);
    const { rows } = await db.query('select name from mikro_orm_migrations');
    expect(rows).toHaveLength(shipped.length);
    const applied = [a, b].map((server) => server.logs.find((line) => line.component === 'migrations')?.applied as string[]);
    expect(applied.flat()).toHaveLength(shipped.length);
    for (const server of [a, b]) expect((await server.gql(`{ health { status } }`)).body).toEqual({ data: { health: { status: 'OK' } } });
  });

  it('accept each other’s tokens and see each other’s writes', async () => {
    const user = await signUpUser(a.url);
    const onB = api(b.url, user.token);
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
    const results = await Promise.all([api(a.url).request(mutation, input), api(b.url).request(mutation, input)]);
    const codes = results.map((r) => r.errors?.[0]?.extensions?.code ?? 'ok').sort();
    expect(codes).toEqual(['CONFLICT', 'ok']);
  });
});
