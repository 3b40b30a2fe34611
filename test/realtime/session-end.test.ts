import type { MikroORM } from '@mikro-orm/postgresql';
import type { GraphQLError } from 'graphql';
import WebSocket from 'ws';
import type { Listen, ListenerEvents } from '../../src/db/notifications.js';
import { SessionGate, TokenService } from '../../src/modules/users/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { api, sessionIdOf, signUpUser } from '../support/api.js';
import { openOrm, testConfig } from '../support/orm.js';
import { instancesForTests, serverForTests } from '../support/server.js';
import { sseSubscribe, wsSession, type Received } from '../support/subscriptions.js';
import { createTask } from '../support/tasks.js';
import { waitFor } from '../support/wait.js';

const SECRET = 'session-end-test-secret-that-is-long-enough';
const SIGN_IN = `mutation($email: String!, $password: String!) { signIn(email: $email, password: $password) { token } }`;
const SIGN_OUT = `mutation($scope: SignOutScope) { signOut(scope: $scope) }`;
const DELETE_ACCOUNT = `mutation($password: String!) { deleteAccount(password: $password) }`;

/** The contract's bound: an ended session's subscriptions end within 2 s, on every instance. */
const WITHIN_MS = 2_000;

const codes = (received: Received) => received.errors.map((error) => error.extensions?.code);

describe('subscriptions of a session that ends', () => {
  const t = instancesForTests(SECRET);

  /** A WebSocket and an SSE subscription of `token` on instance b, each having delivered one change. */
  async function subscribedOnB(user: Awaited<ReturnType<typeof signUpUser>>, token: string) {
    const before = t.b.feed.size;
    const ws = wsSession(t.b.url, token);
    const overWs = ws.subscribe();
    const sse = sseSubscribe(t.b.url, token);
    await waitFor(() => t.b.feed.size === before + 2);
    await createTask(user.api, { title: 'seen by both' });
    await Promise.all([overWs.take(1), sse.received.take(1)]);
    return { ws, overWs, sse };
  }

  it('end with UNAUTHENTICATED on another instance when the session signs out, and the socket closes', async () => {
    const user = await signUpUser(t.a.url);
    const { ws, overWs, sse } = await subscribedOnB(user, user.token);
    try {
      await api(t.a.url, user.token).ok(SIGN_OUT, {});
      await overWs.until(() => overWs.errors.length > 0, WITHIN_MS, 'the end');
      await sse.received.until(() => sse.received.errors.length > 0, WITHIN_MS, 'the end');
      expect(codes(overWs)).toEqual(['UNAUTHENTICATED']);
      expect(codes(sse.received)).toEqual(['UNAUTHENTICATED']);
      // The socket closes after it, as when a token expires.
      await waitFor(() => ws.socket()?.readyState === WebSocket.CLOSED);
      await waitFor(() => t.b.feed.size === 0);
    } finally {
      await ws.close();
      sse.close();
    }
  });

  it('keep the subscriptions of the sessions that stay', async () => {
    const user = await signUpUser(t.a.url);
    const { signIn } = await api(t.a.url).ok<{ signIn: { token: string } }>(SIGN_IN, { email: user.user.email, password: user.password });
    const staying = await subscribedOnB(user, user.token);
    const leaving = await subscribedOnB(user, signIn.token);
    try {
      // The first session ends the others: the second one's subscriptions end, the first one's stay.
      await api(t.a.url, user.token).ok(SIGN_OUT, { scope: 'OTHERS' });
      await leaving.overWs.until(() => leaving.overWs.errors.length > 0, WITHIN_MS, 'the end');
      await leaving.sse.received.until(() => leaving.sse.received.errors.length > 0, WITHIN_MS, 'the end');
      await createTask(user.api, { title: 'after the sign-out' });
      await Promise.all([staying.overWs.take(2), staying.sse.received.take(2)]);
      expect([codes(staying.overWs), codes(staying.sse.received)]).toEqual([[], []]);
    } finally {
      for (const { ws, sse } of [staying, leaving]) {
        await ws.close();
        sse.close();
      }
    }
  });

  it('end with UNAUTHENTICATED when the account is deleted', async () => {
    const user = await signUpUser(t.a.url);
    const { ws, overWs, sse } = await subscribedOnB(user, user.token);
    try {
      await api(t.a.url, user.token).ok(DELETE_ACCOUNT, { password: user.password });
      await overWs.until(() => overWs.errors.length > 0, WITHIN_MS, 'the end');
      await sse.received.until(() => sse.received.errors.length > 0, WITHIN_MS, 'the end');
      expect([codes(overWs), codes(sse.received)]).toEqual([['UNAUTHENTICATED'], ['UNAUTHENTICATED']]);
      // A new socket with the token is refused.
      const again = wsSession(t.b.url, user.token);
      expect(await again.subscribe().ended).toMatchObject({ code: 4403 });
    } finally {
      await ws.close();
      sse.close();
    }
  });
});

/**
 * What a subscription follows on an instance whose listener was away when its session ended. The gate is built here
 * on the test database with a listener the test turns on, so that the order of events is the test's; the sessions
 * are made and ended through a real server, whose announcements this gate never hears.
 */
describe('a session followed after it ended unheard', () => {
  const t = serverForTests();
  let orm: MikroORM;
  beforeAll(async () => {
    orm = await openOrm(t.db.url);
  });
  afterAll(async () => {
    await orm?.close();
  });

  /** A listener that is away until `up()`, then in place; it never hears an announcement. */
  function silentListener() {
    let listening = false;
    let events: ListenerEvents | undefined;
    const listen: Listen = (_channel, listenerEvents) => {
      events = listenerEvents;
      return {
        get listening() {
          return listening;
        },
        ready: async () => undefined,
        release: () => undefined,
        stop: async () => undefined,
      };
    };
    return {
      listen,
      up: () => {
        listening = true;
        events!.resumed();
      },
    };
  }

  it('is read again and ended, even after the sweep that followed the listener coming back', async () => {
    const config = testConfig(t.db.url);
    const logger = createLogger(config);
    const listener = silentListener();
    const gate = new SessionGate(orm, new TokenService(config, logger), listener.listen, logger, config.jwtTtlSeconds * 1000);
    try {
      const [ending, staying] = [await signUpUser(t.server.url), await signUpUser(t.server.url)];
      // Read live while the listener is away: believed for a second, and not vouched for by the listener.
      expect(await gate.check(sessionIdOf(ending.token), ending.user.id)).toBe(true);
      await api(t.server.url, ending.token).ok(SIGN_OUT, {});
      // The listener comes back. The sweeps while another session is followed read every followed session once,
      // then only what the listener cannot vouch for.
      listener.up();
      const stop = gate.follow(sessionIdOf(staying.token), () => undefined);
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      // Followed now, on the strength of the read before the listener came back: read once more, and ended.
      let ended = undefined as GraphQLError | undefined;
      gate.follow(sessionIdOf(ending.token), (error) => (ended = error));
      await waitFor(() => ended !== undefined, 5_000);
      expect(ended?.extensions?.code).toBe('UNAUTHENTICATED');
      expect(await gate.check(sessionIdOf(staying.token), staying.user.id)).toBe(true);
      stop();
    } finally {
      await gate.close();
    }
  });
});
