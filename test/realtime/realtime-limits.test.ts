import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { sessionIdOf, signUpUser } from '../support/api.js';
import { serverForTests } from '../support/server.js';
import { sseSubscribe, wsSession, type Received, type WsSession } from '../support/subscriptions.js';
import { createTask, UPDATE_TASK } from '../support/tasks.js';
import { waitFor } from '../support/wait.js';
import { TokenService } from '../../src/modules/users/tokens.js';
import { createLogger } from '../../src/observability/logger.js';

type User = Awaited<ReturnType<typeof signUpUser>>;

const JWT_SECRET = 'a-test-secret-that-is-long-enough-for-hs256';

/** 10,000 emoji: the longest description there is, 40 KB of UTF-8. */
const LONGEST = '😀'.repeat(10_000);
const DESCRIPTIONS = 'subscription ($after: String) { taskChanges(after: $after) { cursor task { description } } }';

/** The TCP socket under a WebSocket client: paused, it stops reading, and the server's writes back up. */
const tcpOf = (session: WsSession) => (session.socket() as unknown as { _socket: Socket })._socket;

const codes = (received: Received) => received.errors.map((error) => error.extensions?.code);

/** `n` edits of `taskId`, `parallel` at a time, each with a new description. */
async function edit(user: User, taskId: string, n: number, parallel = 4): Promise<void> {
  for (let i = 0; i < n; i += parallel) {
    await Promise.all(
      Array.from({ length: Math.min(parallel, n - i) }, (_, j) =>
        user.api.ok(UPDATE_TASK, { id: taskId, input: { description: `${i + j} ${LONGEST.slice(0, 2 * 9_990)}` } }),
      ),
    );
  }
}

describe('subscribers that do not read', () => {
  const t = serverForTests({
    env: { SUBSCRIPTION_BUFFER_BYTES: '131072', SUBSCRIPTION_BUFFER_TOTAL_BYTES: '524288', SUBSCRIPTIONS_PER_USER: '5' },
  });
  const sessions: WsSession[] = [];
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
    await waitFor(() => t.server.feed.size === 0);
  });

  it('end with a retryable error past SUBSCRIPTION_BUFFER_BYTES; resuming from the last cursor loses nothing', async () => {
    const user = await signUpUser(t.server.url);
    const task = await createTask(user.api, { title: 'watched' });
    const session = wsSession(t.server.url, user.token);
    sessions.push(session);
    const received = session.subscribe({}, DESCRIPTIONS);
    await waitFor(() => t.server.feed.size === 1);
    await user.api.ok(UPDATE_TASK, { id: task.id, input: { description: 'first' } });
    await received.take(1);
    tcpOf(session).pause();
    await edit(user, task.id, 200);
    // Its buffer overflowed: the server no longer holds it, nor anything of it.
    await waitFor(() => t.server.feed.size === 0);
    expect(t.server.feed.buffers.total).toBeLessThan(1024 * 1024);
    tcpOf(session).resume();
    await received.ended;
    expect(codes(received)).toEqual(['RATE_LIMITED']);
    expect(received.errors[0]!.extensions?.retryAfterSeconds).toBeGreaterThan(0);
    const delivered = received.changes.length - 1;
    expect(delivered).toBeLessThan(200);
    const again = wsSession(t.server.url, user.token);
    sessions.push(again);
    const resumed = again.subscribe({ after: received.changes.at(-1)!.cursor }, DESCRIPTIONS);
    const rest = await resumed.take(200 - delivered);
    // Every edit once, across the two (edits sent together commit in any order).
    const numbers = [...received.changes.slice(1), ...rest].map((change) => Number(change.task!.description!.split(' ')[0]));
    expect(numbers.sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });

  it('hold at most SUBSCRIPTION_BUFFER_TOTAL_BYTES together, the largest cut first, while a reading user gets every change', async () => {
    const writers = await Promise.all([0, 1, 2].map(() => signUpUser(t.server.url)));
    const reader = await signUpUser(t.server.url);
    const stalled: { session: WsSession; subscriptions: Received[] }[] = [];
    for (const writer of writers) {
      const session = wsSession(t.server.url, writer.token);
      sessions.push(session);
      stalled.push({ session, subscriptions: Array.from({ length: 5 }, () => session.subscribe({}, DESCRIPTIONS)) });
    }
    const readerSession = wsSession(t.server.url, reader.token);
    sessions.push(readerSession);
    const readerReceived = readerSession.subscribe({}, 'subscription { taskChanges { cursor kind } }');
    await waitFor(() => t.server.feed.size === 16);
    for (const { session } of stalled) tcpOf(session).pause();

    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, t.server.feed.buffers.total)), 2);
    const readersTask = await createTask(reader.api, { title: 'mine' });
    await Promise.all([
      ...writers.map(async (writer) => edit(writer, (await createTask(writer.api, { title: 'big' })).id, 60)),
      edit(reader, readersTask.id, 10, 1),
    ]);
    clearInterval(sampler);

    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(512 * 1024);
    // Every stalled subscription was ended (by its own limit or cut for the process's); none is left holding.
    await waitFor(() => t.server.feed.size === 1);
    expect(t.server.feed.buffers.cuts).toBeGreaterThan(0);
    // The reader, meanwhile, got every change of its own.
    expect((await readerReceived.take(11)).map((change) => change.kind)).toEqual(['CREATED', ...Array(10).fill('UPDATED')]);
    // Each stalled client learns it must resume: an error it can retry, or a closed socket.
    for (const { session, subscriptions } of stalled) {
      tcpOf(session).resume();
      for (const received of subscriptions) {
        const ending = await received.ended;
        if (received.errors.length > 0) expect(codes(received)).toEqual(['RATE_LIMITED']);
        else expect(ending).toMatchObject({ code: expect.any(Number) });
      }
    }
  });
});

describe('what a subscription delivers', () => {
  const t = serverForTests({ env: { COST_RATE_LIMIT: '1000' } });

  it('is charged to the user’s cost budget by its fields, aliases included, and ends with RATE_LIMITED when spent', async () => {
    const user = await signUpUser(t.server.url);
    // taskChanges, its statements and ten aliased task { description }: 41 to subscribe, 21 an event.
    const aliases = Array.from({ length: 10 }, (_, i) => `d${i}: task { description }`).join(' ');
    const session = wsSession(t.server.url, user.token);
    const received = session.subscribe({}, `subscription { taskChanges { ${aliases} } }`);
    await waitFor(() => t.server.feed.size === 1);
    const {
      createTask: { id },
    } = await user.api.ok<{ createTask: { id: string } }>('mutation { createTask(input: { title: "watched" }) { id } }');
    // Edited by hand, so that the edits spend nothing of the budget themselves.
    for (let i = 0; i < 60; i++) await t.db.query(`update tasks set description = $2 where id = $1`, [id, LONGEST.slice(0, 2000 + i)]);
    await received.ended;
    const events = received.results.filter((result) => result.data);
    expect(events.length).toBeGreaterThan(0);
    expect(events.length).toBeLessThanOrEqual(Math.floor((1000 - 41) / 21));
    expect(codes(received)).toEqual(['RATE_LIMITED']);
    expect(received.errors[0]!.extensions?.retryAfterSeconds).toBeGreaterThan(0);
    await session.close();
  });
});

describe('subscription documents and limits', () => {
  const t = serverForTests({ env: { SUBSCRIPTIONS_PER_USER: '1', JWT_SECRET } });

  it('close a socket whose token expired, after its subscriptions end with UNAUTHENTICATED, and give its place back', async () => {
    const user = await signUpUser(t.server.url);
    const shortLived = new TokenService(
      { env: 'test', jwtSecret: JWT_SECRET, jwtTtlSeconds: 2 },
      createLogger({ env: 'test', logLevel: 'silent' }),
    );
    // A raw socket: a graphql-ws client would close it itself once its last subscription ended.
    const socket = new WebSocket(`${t.server.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
    const messages: { type: string; payload?: { errors?: { extensions?: { code?: string } }[] } }[] = [];
    socket.on('message', (data) => messages.push(JSON.parse(String(data))));
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(
      JSON.stringify({
        type: 'connection_init',
        payload: { authorization: `Bearer ${(await shortLived.issue(user.user.id, sessionIdOf(user.token))).token}` },
      }),
    );
    await waitFor(() => messages.some((message) => message.type === 'connection_ack'));
    socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'subscription { taskChanges { kind } }' } }));
    await waitFor(() => t.server.feed.size === 1);
    expect(await closed).toBe(4403);
    const ended = messages.find((message) => message.type === 'next');
    expect(ended?.payload?.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(messages.at(-1)?.type).toBe('complete');
    // SUBSCRIPTIONS_PER_USER is 1: the user's next socket gets in only if the expired one gave its place back.
    const fresh = wsSession(t.server.url, user.token);
    const next = fresh.subscribe({}, 'subscription { taskChanges { kind } }');
    await waitFor(() => t.server.feed.size === 1);
    await createTask(user.api, { title: 'after expiry' });
    expect((await next.take(1)).map((change) => change.kind)).toEqual(['CREATED']);
    await fresh.close();
    await waitFor(() => t.server.feed.size === 0);
  });

  it('refuse @skip and @include on the root field as a client error, over both transports, and the socket stays open', async () => {
    const user = await signUpUser(t.server.url);
    const session = wsSession(t.server.url, user.token);
    const documents: [string, Record<string, unknown>][] = [
      ['subscription { taskChanges @skip(if: true) { taskId } }', {}],
      ['subscription ($s: Boolean!) { taskChanges @skip(if: $s) { taskId } }', { s: false }],
      ['subscription { ... on Subscription { taskChanges @include(if: false) { taskId } } }', {}],
      ['subscription { ...F } fragment F on Subscription { taskChanges @include(if: true) { taskId } }', {}],
    ];
    for (const [query, variables] of documents) {
      const received = session.subscribe(variables, query);
      const ending = await received.ended;
      expect([
        query,
        (ending as { extensions?: { code?: string } }[])[0]?.extensions?.code,
        JSON.stringify(t.server.logs.filter((l) => l.level >= 50)),
      ]).toEqual([query, 'GRAPHQL_VALIDATION_FAILED', '[]']);
    }
    // Still open: a subscription on the same socket works.
    const fine = session.subscribe({}, 'subscription { taskChanges { kind } }');
    await waitFor(() => t.server.feed.size === 1);
    await createTask(user.api, { title: 'after the refusals' });
    expect((await fine.take(1)).map((change) => change.kind)).toEqual(['CREATED']);
    await session.close();
    await waitFor(() => t.server.feed.size === 0);

    const overSse = await fetch(`${t.server.url}/graphql/stream`, {
      method: 'POST',
      headers: { accept: 'text/event-stream', 'content-type': 'application/json', authorization: `Bearer ${user.token}` },
      body: JSON.stringify({ query: documents[1]![0], variables: { s: true } }),
    });
    expect(overSse.status).toBe(400);
    expect(((await overSse.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe(
      'GRAPHQL_VALIDATION_FAILED',
    );
  });

  it('refuse a Server-Sent Events subscription past SUBSCRIPTIONS_PER_USER with 429 and Retry-After', async () => {
    const user = await signUpUser(t.server.url);
    const first = sseSubscribe(t.server.url, user.token, {}, 'subscription { taskChanges { kind } }');
    await waitFor(() => t.server.feed.size === 1);
    const second = await fetch(`${t.server.url}/graphql/stream`, {
      method: 'POST',
      headers: { accept: 'text/event-stream', 'content-type': 'application/json', authorization: `Bearer ${user.token}` },
      body: JSON.stringify({ query: 'subscription { taskChanges { kind } }' }),
    });
    expect(second.status).toBe(429);
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await second.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe('RATE_LIMITED');
    first.close();
    await waitFor(() => t.server.feed.size === 0);
  });
});
