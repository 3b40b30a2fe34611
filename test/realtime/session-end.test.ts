import WebSocket from 'ws';
import { api, signUpUser } from '../support/api.js';
import { instancesForTests } from '../support/server.js';
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
