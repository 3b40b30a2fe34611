import { signUpUser } from '../support/api.js';
import { TestPostgres } from '../support/postgres.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { inOrder, wsSession, type WsSession } from '../support/subscriptions.js';
import { createTask, UPDATE_TASK } from '../support/tasks.js';
import { waitFor } from '../support/wait.js';

type User = Awaited<ReturnType<typeof signUpUser>>;

/** Retries a write while the database is coming back (DATABASE_UNAVAILABLE), as a client would. */
async function write(user: User, title: string, id: string): Promise<void> {
  await waitFor(async () => !(await user.api.request(UPDATE_TASK, { id, input: { title } })).errors, 20_000);
}

describe('the change feed when PostgreSQL restarts under open subscriptions', () => {
  let postgres: TestPostgres;
  let server: TestServer;
  const sessions: WsSession[] = [];
  beforeAll(async () => {
    postgres = await TestPostgres.start({ database: 'app' });
    server = await startTestServer({
      databaseUrl: postgres.url,
      env: { DB_POOL_MAX: '5', DB_POOL_ACQUIRE_TIMEOUT_MS: '1000', DB_CONNECT_TIMEOUT_MS: '1000' },
    });
  });
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((session) => session.close()));
  });
  // A stop here has taken past 30 s in CI, and has not been reproduced since: the hook waits longer and says how long
  // it took when slow. The server logs into memory, so the steps of stopping it names as slow are printed here; and
  // PostgreSQL's own stop (`pg_ctl stop -w`, which blocks the hook for up to 60 s) is timed apart.
  afterAll(async () => {
    const started = Date.now();
    await server?.stop();
    const ms = Date.now() - started;
    if (ms > 10_000) {
      const slow = server.logs.filter((line) => line.msg === 'a step of stopping was slow').map((line) => `${line.step}: ${line.ms} ms`);
      process.stdout.write(`realtime-faults: server.stop() took ${ms} ms (slow steps: ${slow.join(', ') || 'none'})\n`);
    }
    const stopping = Date.now();
    postgres?.destroy();
    const stopMs = Date.now() - stopping;
    if (stopMs > 10_000) process.stdout.write(`realtime-faults: stopping PostgreSQL took ${stopMs} ms\n`);
  }, 90_000);

  /** A new user subscribed over WebSocket, with one task created and its change received. */
  const subscribedWithOneChange = async (title: string) => {
    const user = await signUpUser(server.url);
    const session = wsSession(server.url, user.token);
    sessions.push(session);
    const received = session.subscribe();
    await waitFor(() => server.feed.size === 1);
    const task = await createTask(user.api, { title });
    await received.take(1);
    return { user, session, received, task };
  };

  it('reconnects, catches up from the log, and delivers everything once, in order', async () => {
    const { user, received, task } = await subscribedWithOneChange('r0');

    postgres.stop();
    await postgres.restart();
    // Written as soon as the database answers again, most likely before the listener is back.
    for (let i = 1; i <= 5; i++) await write(user, `r${i}`, task.id);
    const changes = await received.take(6, 20_000);
    expect(inOrder(changes)).toBe(true);
    expect(changes.map((change) => change.task?.title)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5']);
    await write(user, 'r6', task.id);
    expect((await received.take(7)).at(-1)?.task?.title).toBe('r6');
    expect(received.errors).toEqual([]);
  });

  it('ends subscriptions with a retryable DATABASE_UNAVAILABLE when it cannot listen again in time; resuming loses nothing', async () => {
    const { user, session, received, task } = await subscribedWithOneChange('d0');

    postgres.stop();
    try {
      await received.ended;
      expect(received.errors.map((error) => error.extensions?.code)).toEqual(['DATABASE_UNAVAILABLE']);
    } finally {
      await postgres.restart();
    }
    await write(user, 'd1', task.id);
    const resumed = session.subscribe({ after: received.changes.at(-1)!.cursor });
    expect((await resumed.take(1, 20_000)).map((change) => change.task?.title)).toEqual(['d1']);
  }, 40_000);
});
