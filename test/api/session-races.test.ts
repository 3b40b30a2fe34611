import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { api, signUpUser } from '../support/api.js';
import { createTestDatabase, lockWaiters, sessionListeners, type TestDatabase } from '../support/database.js';
import { serverForTests, startTestServer, type TestServer } from '../support/server.js';
import { sseSubscribe } from '../support/subscriptions.js';
import { createTask } from '../support/tasks.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait.js';

const SECRET = 'session-races-secret-that-is-long-enough';
const SIGN_IN = `mutation($email: String!, $password: String!) { signIn(email: $email, password: $password) { token refreshToken } }`;
const REFRESH = `mutation($refreshToken: String!) { refreshSession(refreshToken: $refreshToken) { token } }`;
const SIGN_OUT = `mutation($scope: SignOutScope) { signOut(scope: $scope) }`;
const CHANGE_PASSWORD = `mutation($current: String!) { changePassword(currentPassword: $current, newPassword: "another password") { token } }`;
const codeOf = (result: { errors?: { extensions?: { code?: string } }[] }) => result.errors?.[0]?.extensions?.code ?? 'OK';

describe('password changes racing other session changes', () => {
  const t = serverForTests({ env: { JWT_SECRET: SECRET } });
  const unexpected = () => t.server.logs.filter((line) => line.level >= 50);

  /** Makes every statement of `event` on `table` take 0.4 s longer, so that two transactions overlap. */
  async function slowed<T>(table: string, event: 'update' | 'delete', work: () => Promise<T>): Promise<T> {
    await t.db.query(`create or replace function slow_down() returns trigger language plpgsql as $$
      begin perform pg_sleep(0.4); return null; end $$`);
    await t.db.query(`create trigger slow_down after ${event} on ${table} for each statement execute function slow_down()`);
    try {
      return await work();
    } finally {
      await t.db.query(`drop trigger slow_down on ${table}`);
    }
  }

  it('answers UNAUTHENTICATED, not an internal error, when the session signs out while the password is checked', async () => {
    const user = await signUpUser(t.server.url);
    const holder = new pg.Client({ connectionString: t.db.url });
    await holder.connect();
    try {
      // The change waits on the user's row, past its password check; the session ends meanwhile.
      await holder.query('begin');
      await holder.query('select 1 from users where id = $1 for update', [user.user.id]);
      const changing = user.api.request(CHANGE_PASSWORD, { current: user.password });
      await waitFor(async () => (await lockWaiters(holder)) >= 1);
      expect(codeOf(await user.api.request(SIGN_OUT, {}))).toBe('OK');
      await holder.query('commit');
      expect(codeOf(await changing)).toBe('UNAUTHENTICATED');
      expect(codeOf(await user.api.request(`{ me { id } }`))).toBe('UNAUTHENTICATED');
    } finally {
      await holder.end();
    }
    expect(unexpected()).toEqual([]);
  });

  it('takes turns with a refresh of the same session, and with a sign-out everywhere, without a deadlock', async () => {
    const user = await signUpUser(t.server.url);
    const [changed, refreshed] = await slowed('refresh_tokens', 'update', async () => {
      const changing = user.api.request(CHANGE_PASSWORD, { current: user.password });
      await sleep(150);
      return Promise.all([changing, api(t.server.url).request(REFRESH, { refreshToken: user.refreshToken })]);
    });
    expect([codeOf(changed), codeOf(refreshed)]).not.toContain('INTERNAL_SERVER_ERROR');

    const other = await signUpUser(t.server.url);
    const { signIn } = await api(t.server.url).ok<{ signIn: { token: string } }>(SIGN_IN, {
      email: other.user.email,
      password: other.password,
    });
    const outcomes = await slowed('sessions', 'delete', async () => {
      const changing = other.api.request(CHANGE_PASSWORD, { current: other.password });
      await sleep(150);
      return Promise.all([changing, api(t.server.url, signIn.token).request(SIGN_OUT, { scope: 'ALL' })]);
    });
    expect(outcomes.map(codeOf)).not.toContain('INTERNAL_SERVER_ERROR');
    expect(codeOf(outcomes[1]!)).toBe('OK');
    expect(unexpected()).toEqual([]);
  });
});

describe('an instance whose listening connection silently stops delivering', () => {
  let db: TestDatabase;
  let a: TestServer;
  let b: TestServer;
  let proxy: TcpProxy;

  beforeAll(async () => {
    db = await createTestDatabase();
    a = await startTestServer({ databaseUrl: db.url, env: { JWT_SECRET: SECRET } });
    proxy = await TcpProxy.to(db.url);
    // b's requests go straight to PostgreSQL; its LISTEN connections (DATABASE_DIRECT_URL) through the proxy.
    b = await startTestServer({
      databaseUrl: db.url,
      directUrl: proxy.urlFor(db.url),
      env: { JWT_SECRET: SECRET, MIGRATE_ON_START: 'false' },
    });
  });
  afterAll(async () => {
    await proxy?.setMode('forward');
    await Promise.all([a?.stop(), b?.stop()]);
    await proxy?.close();
    await db?.drop();
  });

  it('still refuses an ended session within 2 s, and ends its subscription', async () => {
    const user = await signUpUser(a.url);
    const access = async (url: string) => codeOf(await api(url, user.token).request(`{ me { id } }`));
    expect([await access(a.url), await access(b.url)]).toEqual(['OK', 'OK']);
    await waitFor(async () => (await sessionListeners(db.url)) >= 2);
    // Believed from memory on b, while its listener is in place.
    await sleep(1_100);
    expect(await access(b.url)).toBe('OK');
    const stream = sseSubscribe(b.url, user.token);
    await waitFor(() => b.feed.size === 1);
    await createTask(user.api, { title: 'before' });
    await stream.received.take(1);
    try {
      // The network between b and its listening connections stops carrying anything, without a word.
      await proxy.setMode('hang');
      await api(a.url, user.token).ok(SIGN_OUT, {});
      await waitFor(async () => (await access(b.url)) === 'UNAUTHENTICATED', 2_000);
      await stream.received.until(() => stream.received.errors.length > 0, 2_000, 'the end');
      expect(stream.received.errors.map((error) => error.extensions?.code)).toEqual(['UNAUTHENTICATED']);
    } finally {
      stream.close();
    }
  });
});
