import pg from 'pg';
import WebSocket from 'ws';
import { sessionIdOf, signUpUser } from '../support/api.js';
import { serverForTests } from '../support/server.js';
import { cursorAfter, FROM_START, inOrder, sseSubscribe, wsSession, type ChangeView, type WsSession } from '../support/subscriptions.js';
import { COMPLETE_TASK, DELETE_TASK, UPDATE_TASK, createTask } from '../support/tasks.js';
import { TokenService } from '../../src/modules/users/tokens.js';
import { createLogger } from '../../src/observability/logger.js';
import { ChangeFeed, type FeedItem } from '../../src/modules/tasks/change-feed.js';
import { ORIGIN } from '../../src/modules/tasks/change-position.js';
import { ChangeListener, listenOn } from '../../src/realtime/change-listener.js';
import { waitFor } from '../support/wait.js';

type User = Awaited<ReturnType<typeof signUpUser>>;

const JWT_SECRET = 'a-test-secret-that-is-long-enough-for-hs256';

const kinds = (changes: ChangeView[]) => changes.map((change) => change.kind);

describe('taskChanges over WebSocket', () => {
  const t = serverForTests({ env: { JWT_SECRET, SUBSCRIPTIONS_PER_USER: '3', DB_POOL_MAX: '12' } });
  const sessions: WsSession[] = [];
  const session = (user: User | string | undefined) => {
    const s = wsSession(t.server.url, typeof user === 'object' ? user.token : user);
    sessions.push(s);
    return s;
  };
  /** Subscribes and waits until the server reads the log for it: what commits from then on is delivered. */
  const subscribed = async (s: WsSession, variables: Record<string, unknown> = {}) => {
    const before = t.server.feed.size;
    const received = s.subscribe(variables);
    await waitFor(() => t.server.feed.size > before || received.results.length > 0 || received.ending !== undefined);
    return received;
  };
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
    await waitFor(() => t.server.feed.size === 0);
  });

  it('delivers each committed change once, in commit order, with the task as that change committed it', async () => {
    const user = await signUpUser(t.server.url);
    const received = await subscribed(session(user));
    const task = await createTask(user.api, { title: 'first', tags: ['a'] });
    await user.api.ok(UPDATE_TASK, { id: task.id, input: { title: 'second' } });
    await user.api.ok(COMPLETE_TASK, { id: task.id });
    await user.api.ok(DELETE_TASK, { id: task.id });
    const changes = await received.take(4);
    expect(kinds(changes)).toEqual(['CREATED', 'UPDATED', 'UPDATED', 'DELETED']);
    expect(changes.map((change) => change.taskId)).toEqual([task.id, task.id, task.id, task.id]);
    expect(changes.map((change) => change.task?.title ?? null)).toEqual(['first', 'second', 'second', null]);
    expect(changes.map((change) => change.task?.status ?? null)).toEqual(['PENDING', 'PENDING', 'COMPLETED', null]);
    expect(changes[0]!.task).toEqual({ ...task, isOverdue: false });
    expect(changes[2]!.task!.completedAt).not.toBeNull();
    expect(changes[0]!.task!.owner).toEqual({ id: user.user.id, email: user.user.email });
    expect(inOrder(changes)).toBe(true);
    for (const change of changes) expect(Math.abs(Date.parse(change.at) - Date.now())).toBeLessThan(60_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(received.changes).toHaveLength(4);
    expect(received.errors).toEqual([]);
  });

  it('never delivers another user’s changes, nor a mutation that rolled back', async () => {
    const [alice, bob] = [await signUpUser(t.server.url), await signUpUser(t.server.url)];
    const ofAlice = await subscribed(session(alice));
    const ofBob = await subscribed(session(bob));
    const task = await createTask(alice.api, { title: 'alice’s' });
    expect(await bob.api.code(DELETE_TASK, { id: task.id })).toBe('NOT_FOUND');
    expect(await alice.api.code(UPDATE_TASK, { id: task.id, input: { title: ' ' } })).toBe('BAD_USER_INPUT');
    await createTask(bob.api, { title: 'bob’s' });
    await alice.api.ok(COMPLETE_TASK, { id: task.id });
    expect(kinds(await ofAlice.take(2))).toEqual(['CREATED', 'UPDATED']);
    expect((await ofBob.take(1)).map((change) => change.task?.title)).toEqual(['bob’s']);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(ofAlice.changes).toHaveLength(2);
    expect(ofBob.changes).toHaveLength(1);
  });

  it('delivers concurrent writers’ changes each once, in cursor order', async () => {
    const user = await signUpUser(t.server.url);
    const received = await subscribed(session(user));
    await Promise.all(Array.from({ length: 20 }, (_, i) => createTask(user.api, { title: `racer ${i}` })));
    const changes = await received.take(20);
    expect(inOrder(changes)).toBe(true);
    expect(new Set(changes.map((change) => change.taskId)).size).toBe(20);
  });

  it('resumes after a cursor: the changes since from the log, then live ones, with no gap and no duplicate', async () => {
    const user = await signUpUser(t.server.url);
    const first = await subscribed(session(user));
    const task = await createTask(user.api, { title: 'v1' });
    for (let i = 2; i <= 4; i++) await user.api.ok(UPDATE_TASK, { id: task.id, input: { title: `v${i}` } });
    const seen = await first.take(4);
    // The client went away after the second change; three more commit before it comes back.
    const resumeAfter = seen[1]!.cursor;
    await sessions[0]!.close();
    await user.api.ok(UPDATE_TASK, { id: task.id, input: { title: 'v5' } });
    const resumed = session(user).subscribe({ after: resumeAfter });
    expect((await resumed.take(3)).map((change) => change.task?.title)).toEqual(['v3', 'v4', 'v5']);
    await user.api.ok(UPDATE_TASK, { id: task.id, input: { title: 'v6' } });
    const since = await resumed.take(4);
    expect(since.map((change) => change.task?.title)).toEqual(['v3', 'v4', 'v5', 'v6']);
    expect(inOrder(since)).toBe(true);
    // The replayed events are the ones the live feed sent (their cursors may name other transactions: each is
    // where its read was, and they include the same changes of this user).
    const withoutCursor = ({ cursor: _, ...change }: ChangeView) => change;
    expect(resumed.changes.slice(0, 2).map(withoutCursor)).toEqual(seen.slice(2, 4).map(withoutCursor));
  });

  it('continues after a list’s changesCursor: a quiet list replays nothing old, and each later change arrives once', async () => {
    const user = await signUpUser(t.server.url);
    const LIST = 'query ($first: Int) { tasks(first: $first) { changesCursor edges { node { id version } } } }';
    type List = { tasks: { changesCursor: string; edges: { node: { id: string; version: number } }[] } };
    const empty = (await user.api.ok<List>(LIST, { first: 5 })).tasks;
    expect(empty.edges).toEqual([]);
    for (let i = 0; i < 3; i++) {
      const task = await createTask(user.api, { title: `kept ${i}` });
      await user.api.ok(UPDATE_TASK, { id: task.id, input: { title: `kept ${i}, edited` } });
    }
    const list = (await user.api.ok<List>(LIST, { first: 2 })).tasks;
    expect(list.edges.map((edge) => edge.node.version)).toEqual([2, 2]);
    const fromList = await subscribed(session(user), { after: list.changesCursor });
    // The empty list reflects none of them: all six follow it, once.
    const fromEmpty = await subscribed(session(user), { after: empty.changesCursor });
    expect((await fromEmpty.take(6)).map((change) => change.task?.title)).toEqual([
      'kept 0',
      'kept 0, edited',
      'kept 1',
      'kept 1, edited',
      'kept 2',
      'kept 2, edited',
    ]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(fromList.changes).toEqual([]);
    await createTask(user.api, { title: 'later' });
    expect((await fromList.take(1)).map((change) => change.task?.title)).toEqual(['later']);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(fromList.changes).toHaveLength(1);
    expect(fromEmpty.changes).toHaveLength(7);
  });

  it('replays a long backlog a batch at a time, in order', async () => {
    const user = await signUpUser(t.server.url);
    const task = await createTask(user.api, { title: 't0' });
    for (let i = 1; i < 250; i++) await user.api.ok(UPDATE_TASK, { id: task.id, input: { title: `t${i}` } });
    const received = session(user).subscribe({ after: FROM_START });
    const changes = await received.take(250, 20_000);
    expect(changes.map((change) => change.task?.title)).toEqual(Array.from({ length: 250 }, (_, i) => `t${i}`));
  });

  it('refuses a malformed cursor with BAD_USER_INPUT, and one past the retention or ahead of the log with RESYNC_REQUIRED', async () => {
    const user = await signUpUser(t.server.url);
    const codes = async (after: string) => {
      const received = session(user).subscribe({ after });
      await received.ended;
      return received.errors.map((error) => [error.extensions?.code, error.extensions?.field]);
    };
    expect(await codes('not a cursor')).toEqual([['BAD_USER_INPUT', 'after']]);
    expect(await codes(Buffer.from('s:01::').toString('base64url'))).toEqual([['BAD_USER_INPUT', 'after']]);
    // Cursors of the log before snapshots (a per-user seq, then a transaction and id).
    expect(await codes(Buffer.from('c:9').toString('base64url'))).toEqual([['RESYNC_REQUIRED', undefined]]);
    expect(await codes(Buffer.from('p:9:9').toString('base64url'))).toEqual([['RESYNC_REQUIRED', undefined]]);
    const task = await createTask(user.api, { title: 'old' });
    await user.api.ok(COMPLETE_TASK, { id: task.id });
    await user.api.ok(DELETE_TASK, { id: task.id });
    // A transaction that has not happened yet.
    expect(await codes(cursorAfter(2 ** 40))).toEqual([['RESYNC_REQUIRED', undefined]]);
    const admin = new pg.Client({ connectionString: t.db.directUrl });
    await admin.connect();
    const logged = async () =>
      (
        await admin.query<{ xid: string; id: string }>('select xid::text, id from task_changes where owner_id = $1 order by xid, id', [
          user.user.id,
        ])
      ).rows.map(({ xid }) => cursorAfter(xid));
    const [first, second, third] = await logged();
    // The first two changes fall out of the retention (24 hours).
    await admin.query(
      `update task_changes set at = now() - interval '25 hours' where owner_id = $1 and task is distinct from null and kind <> 'DELETED'`,
      [user.user.id],
    );
    expect(await codes(FROM_START)).toEqual([['RESYNC_REQUIRED', undefined]]);
    expect(await codes(first!)).toEqual([['RESYNC_REQUIRED', undefined]]);
    const fromSecond = session(user).subscribe({ after: second });
    expect(kinds(await fromSecond.take(1))).toEqual(['DELETED']);
    // Pruning deletes them; the answers stay the same.
    await t.server.feed.prune();
    expect(await logged()).toEqual([third]);
    await admin.end();
    expect(await codes(first!)).toEqual([['RESYNC_REQUIRED', undefined]]);
    expect(await codes(FROM_START)).toEqual([['RESYNC_REQUIRED', undefined]]);
    const stillFromSecond = session(user).subscribe({ after: second });
    expect(kinds(await stillFromSecond.take(1))).toEqual(['DELETED']);
  });

  it('refuses a socket without a valid token, and ends a subscription with UNAUTHENTICATED when its token expires', async () => {
    const user = await signUpUser(t.server.url);
    for (const token of [undefined, 'nonsense', `${user.token}x`]) {
      const refused = session(token).subscribe();
      expect(await refused.ended).toMatchObject({ code: 4403 });
      expect(refused.results).toEqual([]);
    }
    const shortLived = new TokenService(
      { env: 'test', jwtSecret: JWT_SECRET, jwtTtlSeconds: 2 },
      createLogger({ env: 'test', logLevel: 'silent' }),
    );
    const { token } = await shortLived.issue(user.user.id, sessionIdOf(user.token));
    const s = session(token);
    const received = await subscribed(s);
    await createTask(user.api, { title: 'before expiry' });
    await received.take(1);
    await received.ended;
    expect(received.errors.map((error) => error.extensions?.code)).toEqual(['UNAUTHENTICATED']);
    // The expired token opens no socket any more.
    const again = s.subscribe();
    expect(await again.ended).toMatchObject({ code: 4403 });
  });

  it('applies the query limits, validation and masking of /graphql, and serves subscriptions only', async () => {
    const user = await signUpUser(t.server.url);
    const s = session(user);
    const outcome = async (query: string, variables: Record<string, unknown> = {}) => {
      const received = s.subscribe(variables, query);
      const ending = await received.ended;
      const errors = (Array.isArray(ending) ? ending : received.errors) as { message: string; extensions?: { code?: string } }[];
      return errors.map((error) => error.extensions?.code);
    };
    const deep = `subscription { taskChanges { task { owner { id } ${'__typename '.repeat(1)} } ${Array.from({ length: 40 }, (_, i) => `a${i}: cursor`).join(' ')} } }`;
    expect(await outcome(deep)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(await outcome(`subscription { ${'taskChanges { cursor } '.repeat(2)} }`.replace('taskChanges', 'x: taskChanges'))).toEqual([
      'GRAPHQL_VALIDATION_FAILED',
    ]);
    expect(await outcome('subscription { taskChanges { nope } }')).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(await outcome('subscription { taskChanges { cursor }')).toEqual(['GRAPHQL_PARSE_FAILED']);
    expect(await outcome('query { me { id } }')).toEqual(['BAD_REQUEST']);
    expect(await outcome('mutation { deleteTask(id: "x") }')).toEqual(['BAD_REQUEST']);
    expect(await outcome('subscription ($after: String) { taskChanges(after: $after) { cursor } }', { after: 5 })).toEqual([
      'BAD_USER_INPUT',
    ]);
    const huge = `subscription { taskChanges { ${'cursor '.repeat(3000)} } }`;
    expect(await outcome(huge)).toEqual(['QUERY_TOO_COMPLEX']);
  });

  it('holds at most SUBSCRIPTIONS_PER_USER subscriptions per user', async () => {
    const user = await signUpUser(t.server.url);
    // Sockets that go away while their token is being checked leave nothing counted behind.
    const issuer = new TokenService(
      { env: 'test', jwtSecret: JWT_SECRET, jwtTtlSeconds: 3600 },
      createLogger({ env: 'test', logLevel: 'silent' }),
    );
    for (let i = 0; i < 5; i++) {
      const { token } = await issuer.issue(user.user.id, sessionIdOf(user.token), new Date(Date.now() - i * 1000));
      const raw = new WebSocket(`${t.server.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
      await new Promise((resolve) => raw.once('open', resolve));
      raw.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }));
      raw.terminate();
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await t.server.get('/metrics')).body).toMatch(/^subscription_connections\{transport="websocket"\} 0$/m);
    const s = session(user);
    const open = [await subscribed(s), await subscribed(s), await subscribed(s)];
    const fourth = s.subscribe();
    await fourth.ended;
    expect(fourth.errors.map((error) => error.extensions?.code)).toEqual(['RATE_LIMITED']);
    // Another user is not affected.
    const other = await signUpUser(t.server.url);
    const theirs = await subscribed(session(other));
    await createTask(user.api, { title: 'to all three' });
    for (const received of open) expect(kinds(await received.take(1))).toEqual(['CREATED']);
    expect(theirs.results).toEqual([]);
  });

  it('shows connections, subscriptions and delivered events on /metrics, and leaves health alone', async () => {
    const user = await signUpUser(t.server.url);
    const received = await subscribed(session(user));
    await createTask(user.api, { title: 'counted' });
    await received.take(1);
    const metrics = (await t.server.get('/metrics')).body as string;
    expect(metrics).toMatch(/^subscription_connections\{transport="websocket"\} 1$/m);
    expect(metrics).toMatch(/^subscriptions_open\{transport="websocket"\} 1$/m);
    expect(metrics).toMatch(/^subscription_events_total\{transport="websocket"\} [1-9]\d*$/m);
    expect((await t.server.get('/health/ready')).status).toBe(200);
  });

  it('reconnects the listening connection when it is killed, and catches every subscription up from the log', async () => {
    const user = await signUpUser(t.server.url);
    const received = await subscribed(session(user));
    await createTask(user.api, { title: 'before' });
    await received.take(1);
    const admin = new pg.Client({ connectionString: t.db.directUrl });
    await admin.connect();
    const killed = await admin.query(
      `select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'todo-graphql-server listener (task_changes)' and datname = current_database()`,
    );
    expect(killed.rowCount).toBe(1);
    // Written while nobody listens.
    for (let i = 0; i < 5; i++) await createTask(user.api, { title: `meanwhile ${i}` });
    const changes = await received.take(6);
    expect(inOrder(changes)).toBe(true);
    await waitFor(
      async () =>
        (
          await admin.query(
            `select 1 from pg_stat_activity where application_name = 'todo-graphql-server listener (task_changes)' and datname = current_database()`,
          )
        ).rowCount === 1,
    );
    await createTask(user.api, { title: 'after' });
    expect((await received.take(7)).map((change) => change.task?.title).at(-1)).toBe('after');
    await admin.end();
    expect(received.errors).toEqual([]);
  });

  it('listens only while someone is subscribed', async () => {
    const listeners = async () => {
      const admin = new pg.Client({ connectionString: t.db.directUrl });
      await admin.connect();
      const { rowCount } = await admin.query(
        `select 1 from pg_stat_activity where application_name = 'todo-graphql-server listener (task_changes)' and datname = current_database()`,
      );
      await admin.end();
      return rowCount;
    };
    await waitFor(async () => (await listeners()) === 0);
    const user = await signUpUser(t.server.url);
    const s = session(user);
    await subscribed(s);
    expect(await listeners()).toBe(1);
    await s.close();
    await waitFor(async () => (await listeners()) === 0);
  });

  it('serves the same feed over Server-Sent Events, with the token in the Authorization header', async () => {
    const user = await signUpUser(t.server.url);
    const before = t.server.feed.size;
    const { received, close } = sseSubscribe(t.server.url, user.token);
    await waitFor(() => t.server.feed.size > before);
    const task = await createTask(user.api, { title: 'streamed' });
    await user.api.ok(DELETE_TASK, { id: task.id });
    expect(kinds(await received.take(2))).toEqual(['CREATED', 'DELETED']);
    const metrics = (await t.server.get('/metrics')).body as string;
    expect(metrics).toMatch(/^subscriptions_open\{transport="sse"\} 1$/m);
    close();
    await waitFor(() => t.server.feed.size === before);
    // Resume over SSE from the first change's cursor.
    const resumed = sseSubscribe(t.server.url, user.token, { after: received.changes[0]!.cursor });
    expect(kinds(await resumed.received.take(1))).toEqual(['DELETED']);
    resumed.close();
  });

  it('refuses a Server-Sent Events request without a valid token, or over the limits, with the contract’s codes', async () => {
    const user = await signUpUser(t.server.url);
    const codeOf = async (res: Response) =>
      ((await res.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code;
    const post = (token: string | undefined, query: string) =>
      fetch(`${t.server.url}/graphql/stream`, {
        method: 'POST',
        headers: {
          accept: 'text/event-stream',
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({ query }),
      });
    const noToken = await post(undefined, 'subscription { taskChanges { cursor } }');
    expect(noToken.status).toBe(401);
    expect(await codeOf(noToken)).toBe('UNAUTHENTICATED');
    const tooBig = await post(user.token, `subscription { taskChanges { ${'cursor '.repeat(3000)} } }`);
    expect(tooBig.status).toBe(400);
    expect(await codeOf(tooBig)).toBe('QUERY_TOO_COMPLEX');
    const query = await post(user.token, '{ me { id } }');
    expect(query.status).toBe(400);
    expect(await codeOf(query)).toBe('BAD_REQUEST');
    const put = await fetch(`${t.server.url}/graphql/stream`, { method: 'PUT', headers: { authorization: `Bearer ${user.token}` } });
    expect(put.status).toBe(405);
    // A body that is not JSON is not read at all (it could be of any size).
    const notJson = await fetch(`${t.server.url}/graphql/stream`, {
      method: 'POST',
      headers: { accept: 'text/event-stream', 'content-type': 'text/plain; x=application/json', authorization: `Bearer ${user.token}` },
      body: 'x'.repeat(1_000_000),
    });
    expect(notJson.status).toBe(415);
    expect(await codeOf(notJson)).toBe('BAD_REQUEST');
    // A subscription sent to Apollo over plain HTTP is the client's mistake.
    const overHttp = await user.api.request('subscription { taskChanges { cursor } }');
    expect(overHttp.status).toBe(400);
    expect(overHttp.errors?.map((error) => error.extensions?.code)).toEqual(['BAD_REQUEST']);
  });
});

describe('the cost rate limit on subscriptions', () => {
  const t = serverForTests({ env: { COST_RATE_LIMIT: '100' } });

  it('charges each subscribe its cost, over both transports, and refuses with RATE_LIMITED once spent', async () => {
    const user = await signUpUser(t.server.url);
    const session = wsSession(t.server.url, user.token);
    const codes: unknown[] = [];
    try {
      for (let i = 0; i < 8 && !codes.includes('RATE_LIMITED'); i++) {
        const received = session.subscribe({}, 'subscription { taskChanges { cursor } }');
        await waitFor(() => t.server.feed.size === 1 || received.ending !== undefined);
        codes.push(
          received.errors[0]?.extensions?.code ?? (Array.isArray(received.ending) ? received.ending[0]?.extensions?.code : 'open'),
        );
        await session.close();
        await waitFor(() => t.server.feed.size === 0);
      }
    } finally {
      await session.close();
    }
    // Each costs 22 (two fields, two statements): four fit in 100.
    expect(codes.slice(0, 4)).toEqual(['open', 'open', 'open', 'open']);
    expect(codes.at(-1)).toBe('RATE_LIMITED');
    const sse = await fetch(`${t.server.url}/graphql/stream`, {
      method: 'POST',
      headers: { accept: 'text/event-stream', 'content-type': 'application/json', authorization: `Bearer ${user.token}` },
      body: JSON.stringify({ query: 'subscription { taskChanges { cursor } }' }),
    });
    expect(sse.status).toBe(429);
    expect(Number(sse.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});

describe('a subscriber that does not keep up', () => {
  const t = serverForTests();

  it('is held to a bounded buffer, then ended with a retryable error; resuming from its last cursor loses nothing', async () => {
    const user = await signUpUser(t.server.url);
    const logger = createLogger({ env: 'test', logLevel: 'silent' });
    const feed = new ChangeFeed(t.server.orm, t.server.config, listenOn(t.server.config, t.db.directUrl, logger), logger, {
      batch: 5,
      bufferBytes: 5000,
    });
    try {
      const subscription = await feed.open({ userId: user.user.id, after: null, expiresAt: Date.now() + 60_000 });
      const task = await createTask(user.api, { title: 'c0' });
      const first = await subscription.next();
      expect(first.value).toMatchObject({ change: { kind: 'CREATED' } });
      // The consumer stops taking; 20 more changes commit.
      for (let i = 1; i <= 20; i++) await user.api.ok(UPDATE_TASK, { id: task.id, input: { title: `c${i}` } });
      const ended = (await subscription.next()).value as FeedItem;
      expect(ended.end?.extensions.code).toBe('RATE_LIMITED');
      expect((await subscription.next()).done).toBe(true);
      expect(feed.size).toBe(0);
      // Resuming after the one it took replays the rest, a batch at a time.
      const resumed = await feed.open({ userId: user.user.id, after: (first.value as FeedItem).position!, expiresAt: Date.now() + 60_000 });
      const titles: string[] = [];
      while (titles.length < 20) titles.push(((await resumed.next()).value as FeedItem).change!.task!.title);
      expect(titles).toEqual(Array.from({ length: 20 }, (_, i) => `c${i + 1}`));
      await resumed.return!();
    } finally {
      await feed.close();
    }
  });

  it('ends a replay with RESYNC_REQUIRED when the changes it has not read yet are pruned under it', async () => {
    const user = await signUpUser(t.server.url);
    const logger = createLogger({ env: 'test', logLevel: 'silent' });
    const feed = new ChangeFeed(t.server.orm, t.server.config, listenOn(t.server.config, t.db.directUrl, logger), logger, {
      batch: 5,
      bufferBytes: 5000,
    });
    try {
      const task = await createTask(user.api, { title: 'p0' });
      for (let i = 1; i < 20; i++) await user.api.ok(UPDATE_TASK, { id: task.id, input: { title: `p${i}` } });
      const replay = await feed.open({ userId: user.user.id, after: ORIGIN, expiresAt: Date.now() + 60_000 });
      const titles: string[] = [];
      for (let i = 0; i < 5; i++) titles.push(((await replay.next()).value as FeedItem).change!.task!.title);
      expect(titles).toEqual(['p0', 'p1', 'p2', 'p3', 'p4']);
      const admin = new pg.Client({ connectionString: t.db.directUrl });
      await admin.connect();
      // 6 to 10 may be read already (the next batch); 11 to 15 cannot be.
      await admin.query(
        `update task_changes set at = now() - interval '25 hours'
         where ctid in (select ctid from task_changes where owner_id = $1 order by xid, id limit 15)`,
        [user.user.id],
      );
      await admin.end();
      await feed.prune();
      // What was read already still comes; then the end, never a silent jump to 16.
      const rest: FeedItem[] = [];
      for (let next = await replay.next(); !next.done; next = await replay.next()) rest.push(next.value);
      expect(rest.at(-1)!.end?.extensions.code).toBe('RESYNC_REQUIRED');
      const readAlready = new Set(Array.from({ length: 10 }, (_, i) => `p${i}`));
      expect(rest.filter((item) => item.change).every((item) => readAlready.has(item.change!.task!.title))).toBe(true);
    } finally {
      await feed.close();
    }
  });
});

describe('the listening connection', () => {
  const t = serverForTests();

  it('is in place for whoever asked last, however stop and ready interleave', async () => {
    const heard: string[] = [];
    const listener = new ChangeListener(
      t.server.config,
      t.db.directUrl,
      createLogger({ env: 'test', logLevel: 'silent' }),
      'task_changes',
      {
        notify: (ownerId) => heard.push(ownerId),
        resumed: () => undefined,
        lost: () => undefined,
      },
    );
    try {
      const first = listener.ready();
      const stopped = listener.stop();
      const second = listener.ready();
      await Promise.all([first, stopped, second]);
      expect(listener.listening).toBe(true);
      const admin = new pg.Client({ connectionString: t.db.directUrl });
      await admin.connect();
      await admin.query(`select pg_notify('task_changes', 'someone')`);
      await admin.end();
      await waitFor(() => heard.length > 0);
      expect(heard).toEqual(['someone']);
    } finally {
      await listener.stop();
    }
  });
});
