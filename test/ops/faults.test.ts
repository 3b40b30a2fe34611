import { Arg, Ctx, Mutation, Query, Resolver } from 'type-graphql';
import type { Context } from '../../src/graphql/context.js';
import { inTransaction } from '../../src/db/transaction.js';
import { User as UserEntity } from '../../src/modules/users/user.entity.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { signUpUser, type ApiResult } from '../support/api.js';
import { TestPostgres } from '../support/postgres.js';
import { serverForTests, startTestServer, type TestServer } from '../support/server.js';
import { createTask, CREATE_TASK, LIST_TASKS, type TaskView } from '../support/tasks.js';
import { waitFor } from '../support/wait.js';

type User = Awaited<ReturnType<typeof signUpUser>>;

/** Work slow enough for a backend to be killed in the middle of it. */
@Resolver()
class SlowResolver {
  @Query(() => Boolean)
  async slowRead(@Ctx() { em }: Context): Promise<boolean> {
    await em.getConnection().execute('select pg_sleep(0.4)');
    return true;
  }

  @Mutation(() => Boolean)
  slowWrite(@Arg('email') email: string, @Ctx() context: Context): Promise<boolean> {
    return inTransaction(context.em, async (em) => {
      em.create(UserEntity, { email, passwordHash: 'x' });
      await em.flush();
      await em.getConnection().execute('select pg_sleep(0.4)', [], 'all', em.getTransactionContext());
      return true;
    });
  }
}
/** The slow resolvers' statements, while PostgreSQL runs them: the moment to kill their backends. */
const SLEEPING = `select count(*)::int as n from pg_stat_activity where state = 'active' and query like '%pg_sleep(0.4)%' and pid <> pg_backend_pid()`;
const HEALTH = `{ health { status database { connected error } } }`;

describe('when the database fails under a running server', () => {
  let postgres: TestPostgres;
  let server: TestServer;
  let user: User;
  const healthStatus = async () => (await server.gql<{ health: { status: string } }>(HEALTH)).body.data?.health.status ?? 'none';

  beforeAll(async () => {
    postgres = await TestPostgres.start({ database: 'app' });
    server = await startTestServer({
      databaseUrl: postgres.url,
      env: { DB_POOL_MAX: '5', DB_POOL_ACQUIRE_TIMEOUT_MS: '1000', DB_CONNECT_TIMEOUT_MS: '1000', DB_STATEMENT_TIMEOUT_MS: '1000' },
      resolvers: [SlowResolver],
    });
    user = await signUpUser(server.url);
    await createTask(user.api, { title: 'first' });
  });
  afterAll(async () => {
    await server?.stop();
    postgres?.destroy();
  });

  it('hides connections killed by the server (57P01): the next attempt uses a fresh one', async () => {
    // Fill the pool with idle connections, then have the server kill them all.
    await Promise.all(Array.from({ length: 5 }, () => user.api.ok(LIST_TASKS, { first: 5 })));
    expect(await postgres.terminateBackends()).toBeGreaterThan(0);
    const results = await Promise.all([
      ...Array.from({ length: 10 }, () => user.api.request(LIST_TASKS, { first: 5 })),
      ...Array.from({ length: 5 }, (_, i) => user.api.request(CREATE_TASK, { input: { title: `after kill ${i}` } })),
    ]);
    for (const result of results) expect(result.errors).toBeUndefined();
    expect(await healthStatus()).toBe('OK');
  });

  it('retries a read whose backend is killed mid-query, and the client never knows', async () => {
    const read = user.api.request(`{ slowRead }`);
    await waitFor(async () => (await adminCount(postgres.url, SLEEPING)).rows[0]!.n > 0, 5000, 50);
    expect(await postgres.terminateBackends()).toBeGreaterThan(0);
    expect(await read).toMatchObject({ data: { slowRead: true } });
    expect((await read).errors).toBeUndefined();
  });

  it('runs a mutation again when its connection died before COMMIT, writing once', async () => {
    const email = `retry-${Date.now()}@example.com`;
    const write = user.api.request(`mutation($email: String!) { slowWrite(email: $email) }`, { email });
    await waitFor(async () => (await adminCount(postgres.url, SLEEPING)).rows[0]!.n > 0, 5000, 50);
    expect(await postgres.terminateBackends()).toBeGreaterThan(0);
    expect((await write).errors).toBeUndefined();
    const { rows } = await adminCount(postgres.url, 'select count(*)::int as n from users where email = $1', [email]);
    expect(rows[0]).toEqual({ n: 1 });
  });

  it('fails fast with DATABASE_UNAVAILABLE while the database is down, stays up, and recovers by itself', async () => {
    postgres.stop();
    try {
      const read = await user.api.request(LIST_TASKS, {});
      expect(read.errors?.[0]?.extensions?.code).toBe('DATABASE_UNAVAILABLE');
      const write = await user.api.request(CREATE_TASK, { input: { title: 'while down' } });
      expect(write.errors?.[0]?.extensions?.code).toBe('DATABASE_UNAVAILABLE');
      const health = await server.gql<{ health: { status: string } }>(HEALTH);
      expect(health.body.data?.health.status).toBe('DOWN');
      expect((await server.get('/health/ready')).status).toBe(503);
      expect((await server.get('/health/live')).status).toBe(200);
    } finally {
      await postgres.restart();
    }
    await waitFor(async () => (await healthStatus()) === 'OK', 5000, 50);
    expect((await user.api.request(LIST_TASKS, {})).errors).toBeUndefined();
  });

  it('answers, never hangs, when the database accepts connections but stops responding', async () => {
    await user.api.ok(LIST_TASKS, {});
    postgres.freeze();
    try {
      // The health check has its own deadline (2 s); the read, the statement timeout (1 s) and its grace (2 s) for
      // the stuck query, then the acquire timeout (1 s): each answers well within the test's timeout.
      const health = await server.gql<{ health: { status: string } }>(HEALTH);
      expect(health.body.data?.health.status).toBe('DOWN');
      const read = await user.api.request(LIST_TASKS, {});
      expect(read.errors?.[0]?.extensions?.code).toBe('DATABASE_UNAVAILABLE');
    } finally {
      postgres.thaw();
    }
    await waitFor(async () => (await healthStatus()) === 'OK', 5000, 50);
    expect((await user.api.request(LIST_TASKS, {})).errors).toBeUndefined();
  });

  it('loses no acknowledged write and doubles none while the database stops and starts', async () => {
    const acknowledged: TaskView[] = [];
    const refused: ApiResult<unknown>[] = [];
    let running = true;
    let sent = 0;
    const writer = async (lane: number) => {
      for (let i = 0; running; i++) {
        sent++;
        const result = await user.api.request<{ createTask: TaskView }>(CREATE_TASK, { input: { title: `stream ${lane}-${i}` } });
        if (result.data?.createTask) acknowledged.push(result.data.createTask);
        else refused.push(result);
        await sleep(5);
      }
    };
    const lanes = Array.from({ length: 4 }, (_, lane) => writer(lane));
    await sleep(400);
    postgres.stop();
    await sleep(600);
    await postgres.restart();
    await sleep(1200);
    running = false;
    await Promise.all(lanes);

    expect(acknowledged.length).toBeGreaterThan(20);
    expect(refused.length).toBeGreaterThan(0);
    expect(acknowledged.length + refused.length).toBe(sent);
    for (const result of refused) expect(result.errors?.map((e) => e.extensions?.code)).toEqual(['DATABASE_UNAVAILABLE']);

    const { tasks } = await user.api.ok<{ tasks: { totalCount: number } }>(`{ tasks(filter: { search: "stream " }) { totalCount } }`);
    const stored = await listTitles(server, user);
    for (const task of acknowledged) expect(stored.get(task.title)).toBe(1);
    for (const count of stored.values()) expect(count).toBe(1);
    expect(tasks.totalCount).toBe(stored.size);
    // Nothing leaked: every connection is back in the pool.
    const pool = (await server.orm.em.getConnection().getNativeClient()) as unknown as { totalCount: number; idleCount: number };
    await waitFor(async () => pool.totalCount === pool.idleCount, 2000, 50);
  });
});

/** A query of the test's own, on a connection of its own. */
async function adminCount(url: string, sql: string, params: unknown[] = []) {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query<{ n: number }>(sql, params);
  } finally {
    await client.end();
  }
}

async function listTitles(server: TestServer, user: User): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let after: string | null = null;
  for (;;) {
    type Page = { tasks: { edges: { node: { title: string } }[]; pageInfo: { hasNextPage: boolean; endCursor: string } } };
    const page: Page = await user.api.ok<Page>(
      `query($after: String) { tasks(first: 100, after: $after, filter: { search: "stream " }) { edges { node { title } } pageInfo { hasNextPage endCursor } } }`,
      { after },
    );
    for (const { node } of page.tasks.edges) counts.set(node.title, (counts.get(node.title) ?? 0) + 1);
    if (!page.tasks.pageInfo.hasNextPage) return counts;
    after = page.tasks.pageInfo.endCursor;
  }
}

describe('when the answer to a new task is lost after PostgreSQL committed it', () => {
  const t = serverForTests({ proxied: true });

  it('runs the insert again, which writes nothing the second time, and answers the task written once', async () => {
    const user = await signUpUser(t.server.url);
    const lost = t.proxy.loseAnswerTo('insert into tasks');
    const task = await createTask(user.api, { title: 'answer lost', tags: ['kept'] });
    await lost;
    expect(task).toMatchObject({ title: 'answer lost', tags: ['kept'], status: 'PENDING' });
    const { rows } = await t.db.query('select id from tasks where title = $1', ['answer lost']);
    expect(rows).toEqual([{ id: task.id }]);
    const { rows: changes } = await t.db.query('select kind from task_changes where task_id = $1', [task.id]);
    expect(changes).toEqual([{ kind: 'CREATED' }]);
  });
});
