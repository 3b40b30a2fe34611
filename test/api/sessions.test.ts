import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { api, sessionIdOf, signUpUser, uniqueEmail, type Api } from '../support/api.js';
import { adminQuery, lockWaiters, sessionListeners } from '../support/database.js';
import { instancesForTests, serverForTests } from '../support/server.js';
import { createTask, LIST_TASKS } from '../support/tasks.js';
import { waitFor } from '../support/wait.js';

const PAIR = 'token expiresAt refreshToken refreshExpiresAt user { id email }';
const SIGN_IN = `mutation($email: String!, $password: String!) { signIn(email: $email, password: $password) { ${PAIR} } }`;
const REFRESH = `mutation($refreshToken: String!) { refreshSession(refreshToken: $refreshToken) { ${PAIR} } }`;
const SIGN_OUT = `mutation($scope: SignOutScope) { signOut(scope: $scope) }`;
const SESSIONS = `{ sessions { id createdAt lastUsedAt userAgent current } }`;
const CHANGE_PASSWORD = `mutation($currentPassword: String!, $newPassword: String!) {
  changePassword(currentPassword: $currentPassword, newPassword: $newPassword) { ${PAIR} } }`;
const DELETE_ACCOUNT = `mutation($password: String!) { deleteAccount(password: $password) }`;
const ME = `{ me { id } }`;

interface Pair {
  token: string;
  expiresAt: string;
  refreshToken: string;
  refreshExpiresAt: string;
  user: { id: string; email: string };
}

const SECRET = 'sessions-test-secret-that-is-long-enough';

async function signIn(url: string, email: string, password: string, userAgent?: string): Promise<Pair> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(userAgent ? { 'user-agent': userAgent } : {}) },
    body: JSON.stringify({ query: SIGN_IN, variables: { email, password } }),
  });
  const body = (await res.json()) as { data?: { signIn: Pair }; errors?: unknown[] };
  if (!body.data?.signIn) throw new Error(`sign-in failed: ${JSON.stringify(body)}`);
  return body.data.signIn;
}

const refresh = (url: string, refreshToken: string) => api(url).request<{ refreshSession: Pair }>(REFRESH, { refreshToken });
const codeOf = (result: { errors?: { extensions?: { code?: string } }[] }) => result.errors?.[0]?.extensions?.code;
/** What a token gets from a signed-in query: data, or the code it is refused with. */
const access = async (url: string, token: string) => {
  const result = await api(url, token).request<{ me: { id: string } | null }>(ME);
  return result.errors ? codeOf(result) : 'OK';
};

describe('sessions', () => {
  const t = serverForTests({ env: { JWT_SECRET: SECRET } });

  describe('refreshSession', () => {
    it('answers a new pair of the same session and spends the old refresh token', async () => {
      const user = await signUpUser(t.server.url);
      expect(user.refreshToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(new Date(user.refreshExpiresAt).getTime()).toBeGreaterThan(new Date(user.expiresAt).getTime());
      const { data } = await refresh(t.server.url, user.refreshToken);
      const pair = data!.refreshSession;
      expect(pair.user.id).toBe(user.user.id);
      expect(pair.refreshToken).not.toBe(user.refreshToken);
      expect(sessionIdOf(pair.token)).toBe(sessionIdOf(user.token));
      expect(await access(t.server.url, pair.token)).toBe('OK');
      // The new refresh token works in turn.
      const again = await refresh(t.server.url, pair.refreshToken);
      expect(again.errors).toBeUndefined();
    });

    it('ends the session when a spent refresh token is presented again (theft detection)', async () => {
      const user = await signUpUser(t.server.url);
      const { data } = await refresh(t.server.url, user.refreshToken);
      const owner = data!.refreshSession;
      // The thief replays the token the owner already spent: refused, and the session ends for both.
      expect(codeOf(await refresh(t.server.url, user.refreshToken))).toBe('UNAUTHENTICATED');
      expect(await access(t.server.url, owner.token)).toBe('UNAUTHENTICATED');
      expect(await access(t.server.url, user.token)).toBe('UNAUTHENTICATED');
      expect(codeOf(await refresh(t.server.url, owner.refreshToken))).toBe('UNAUTHENTICATED');
      const [row] = (await adminQuery<{ n: string }>('select count(*) as n from sessions where user_id = $1', [user.user.id], t.db.url))
        .rows;
      expect(Number(row!.n)).toBe(0);
    });

    it('refuses malformed, unknown, expired and empty refresh tokens with UNAUTHENTICATED, never a 500', async () => {
      const user = await signUpUser(t.server.url);
      const { token: other } = { token: randomBytes(32).toString('base64url') };
      for (const bad of ['', 'x', user.token, `${user.refreshToken}x`, other, 'a'.repeat(50_000)]) {
        const result = await refresh(t.server.url, bad);
        expect({ bad: bad.slice(0, 20), status: result.status, code: codeOf(result) }).toEqual({
          bad: bad.slice(0, 20),
          status: 200,
          code: 'UNAUTHENTICATED',
        });
      }
      // Expired: refused, and not taken for reuse (the session stays).
      await adminQuery(
        `update refresh_tokens set expires_at = now() - interval '1 second'
         where session_id = (select id from sessions where user_id = $1)`,
        [user.user.id],
        t.db.url,
      );
      expect(codeOf(await refresh(t.server.url, user.refreshToken))).toBe('UNAUTHENTICATED');
      expect(await access(t.server.url, user.token)).toBe('OK');
    });

    it('works only for its own session and user', async () => {
      const [a, b] = [await signUpUser(t.server.url), await signUpUser(t.server.url)];
      const { data } = await refresh(t.server.url, b.refreshToken);
      expect(data!.refreshSession.user.id).toBe(b.user.id);
      expect(sessionIdOf(data!.refreshSession.token)).toBe(sessionIdOf(b.token));
      // a's session is untouched by b's refresh.
      expect((await refresh(t.server.url, a.refreshToken)).errors).toBeUndefined();
    });

    it('stores only a hash of the refresh token, and never logs it', async () => {
      const user = await signUpUser(t.server.url);
      const { data } = await refresh(t.server.url, user.refreshToken);
      await refresh(t.server.url, user.refreshToken);
      const stored = await adminQuery<{ hash: Buffer }>(
        'select hash from refresh_tokens r join sessions s on s.id = r.session_id where s.user_id = $1',
        [user.user.id],
        t.db.url,
      );
      const dump = JSON.stringify(await adminQuery('select * from refresh_tokens', [], t.db.url).then((r) => r.rows));
      for (const token of [user.refreshToken, data!.refreshSession.refreshToken]) {
        expect(dump).not.toContain(token);
        expect(JSON.stringify(t.server.logs)).not.toContain(token);
      }
      expect(stored.rows.every((row) => row.hash.length === 32)).toBe(true);
    });
  });

  describe('sessions and signOut', () => {
    it('lists the live sessions, most recently used first, with the current one marked', async () => {
      const user = await signUpUser(t.server.url);
      const phone = await signIn(t.server.url, user.user.email, user.password, 'Phone/1.0');
      const laptop = await signIn(t.server.url, user.user.email, user.password, `Laptop/${'x'.repeat(300)}`);
      type Listed = { sessions: { id: string; userAgent: string | null; current: boolean; lastUsedAt: string }[] };
      const { sessions } = await api(t.server.url, phone.token).ok<Listed>(SESSIONS);
      expect(sessions.map((s) => s.id)).toEqual([sessionIdOf(laptop.token), sessionIdOf(phone.token), sessionIdOf(user.token)]);
      expect(sessions.map((s) => s.current)).toEqual([false, true, false]);
      expect(sessions[0]!.userAgent).toHaveLength(200);
      expect(sessions[1]!.userAgent).toBe('Phone/1.0');
      expect(codeOf(await api(t.server.url).request(SESSIONS))).toBe('UNAUTHENTICATED');
    });

    it('ends this session, the others, or all of them', async () => {
      const user = await signUpUser(t.server.url);
      const [b, c, d] = [
        await signIn(t.server.url, user.user.email, user.password),
        await signIn(t.server.url, user.user.email, user.password),
        await signIn(t.server.url, user.user.email, user.password),
      ];
      expect(await api(t.server.url, b.token).ok(SIGN_OUT, {})).toEqual({ signOut: true });
      expect(await access(t.server.url, b.token)).toBe('UNAUTHENTICATED');
      expect(codeOf(await refresh(t.server.url, b.refreshToken))).toBe('UNAUTHENTICATED');
      expect(await access(t.server.url, c.token)).toBe('OK');

      await api(t.server.url, c.token).ok(SIGN_OUT, { scope: 'OTHERS' });
      expect(await access(t.server.url, c.token)).toBe('OK');
      expect(await access(t.server.url, d.token)).toBe('UNAUTHENTICATED');
      expect(await access(t.server.url, user.token)).toBe('UNAUTHENTICATED');

      const e = await signIn(t.server.url, user.user.email, user.password);
      await api(t.server.url, e.token).ok(SIGN_OUT, { scope: 'ALL' });
      for (const pair of [c, e]) expect(await access(t.server.url, pair.token)).toBe('UNAUTHENTICATED');
      expect(codeOf(await api(t.server.url, e.token).request(SIGN_OUT, {}))).toBe('UNAUTHENTICATED');
    });

    it('cannot leave a live session when a sign-out races a refresh', async () => {
      const user = await signUpUser(t.server.url);
      const pairs = await Promise.all(Array.from({ length: 8 }, () => signIn(t.server.url, user.user.email, user.password)));
      const outcomes = await Promise.all(
        pairs.map(async (pair) => {
          const [signedOut, refreshed] = await Promise.all([
            api(t.server.url, pair.token).request(SIGN_OUT, {}),
            refresh(t.server.url, pair.refreshToken),
          ]);
          // A sign-out that lost a deadlock is run again, never answered as a failure.
          expect(signedOut.errors).toBeUndefined();
          return refreshed;
        }),
      );
      for (const [i, pair] of pairs.entries()) {
        const renewed = outcomes[i]!.data?.refreshSession;
        expect(await access(t.server.url, pair.token)).toBe('UNAUTHENTICATED');
        if (renewed) {
          expect(await access(t.server.url, renewed.token)).toBe('UNAUTHENTICATED');
          expect(codeOf(await refresh(t.server.url, renewed.refreshToken))).toBe('UNAUTHENTICATED');
        }
      }
      const [row] = (await adminQuery<{ n: string }>('select count(*) as n from sessions where user_id = $1', [user.user.id], t.db.url))
        .rows;
      expect(Number(row!.n)).toBe(1);
    });
  });

  describe('changePassword', () => {
    it('checks the current password, ends every other session and answers a new pair for this one', async () => {
      const user = await signUpUser(t.server.url);
      const other = await signIn(t.server.url, user.user.email, user.password);
      expect(codeOf(await user.api.request(CHANGE_PASSWORD, { currentPassword: 'not the password', newPassword: 'a new password' }))).toBe(
        'UNAUTHENTICATED',
      );
      for (const newPassword of ['short', 'x'.repeat(129)]) {
        const result = await user.api.request(CHANGE_PASSWORD, { currentPassword: user.password, newPassword });
        expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'newPassword' });
      }
      // Nothing changed by the refusals.
      expect(await access(t.server.url, other.token)).toBe('OK');

      const { changePassword } = await user.api.ok<{ changePassword: Pair }>(CHANGE_PASSWORD, {
        currentPassword: user.password,
        newPassword: 'a new password',
      });
      expect(sessionIdOf(changePassword.token)).toBe(sessionIdOf(user.token));
      expect(await access(t.server.url, changePassword.token)).toBe('OK');
      expect(await access(t.server.url, user.token)).toBe('OK');
      expect(await access(t.server.url, other.token)).toBe('UNAUTHENTICATED');
      expect(codeOf(await refresh(t.server.url, other.refreshToken))).toBe('UNAUTHENTICATED');
      expect((await refresh(t.server.url, changePassword.refreshToken)).errors).toBeUndefined();
      expect(codeOf(await api(t.server.url).request(SIGN_IN, { email: user.user.email, password: user.password }))).toBe('UNAUTHENTICATED');
      await signIn(t.server.url, user.user.email, 'a new password');
    });
  });

  describe('deleteAccount', () => {
    it('erases the user and everything of theirs, table by table; their tokens answer UNAUTHENTICATED', async () => {
      const user = await signUpUser(t.server.url);
      const other = await signUpUser(t.server.url);
      await createTask(user.api, { title: 'mine' });
      await createTask(other.api, { title: 'theirs' });
      const second = await signIn(t.server.url, user.user.email, user.password);
      await refresh(t.server.url, second.refreshToken);
      expect(codeOf(await user.api.request(DELETE_ACCOUNT, { password: 'not the password' }))).toBe('UNAUTHENTICATED');

      expect(await user.api.ok(DELETE_ACCOUNT, { password: user.password })).toEqual({ deleteAccount: true });

      // Every table of the schema, every column: no value names the user.
      const tables = await adminQuery<{ table_name: string }>(
        `select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`,
        [],
        t.db.url,
      );
      expect(tables.rows.length).toBeGreaterThanOrEqual(8);
      for (const { table_name } of tables.rows) {
        const hits = await adminQuery<{ n: string }>(
          `select count(*) as n from "${table_name}" row where row::text ilike $1 or row::text ilike $2`,
          [`%${user.user.id}%`, `%${user.user.email}%`],
          t.db.url,
        );
        expect({ table: table_name, rows: Number(hits.rows[0]!.n) }).toEqual({ table: table_name, rows: 0 });
      }
      // The other user keeps everything.
      const theirs = await other.api.ok<{ tasks: { totalCount: number } }>(`{ tasks { totalCount } }`);
      expect(theirs.tasks.totalCount).toBe(1);

      for (const token of [user.token, second.token]) {
        const client = api(t.server.url, token);
        expect(codeOf(await client.request(ME))).toBe('UNAUTHENTICATED');
        expect(codeOf(await client.request(LIST_TASKS, {}))).toBe('UNAUTHENTICATED');
        expect(codeOf(await client.request(`mutation { createTask(input: { title: "ghost" }) { id } }`))).toBe('UNAUTHENTICATED');
      }
      expect(codeOf(await refresh(t.server.url, second.refreshToken))).toBe('UNAUTHENTICATED');
      // The email is free again.
      const again = await signUpUser(t.server.url, user.user.email);
      expect(again.user.id).not.toBe(user.user.id);
    });

    it('leaves no task behind when it races createTask', async () => {
      for (let round = 0; round < 5; round++) {
        const user = await signUpUser(t.server.url);
        const creates = Array.from({ length: 6 }, (_, i) =>
          user.api.request(`mutation { createTask(input: { title: "race ${i}" }) { id } }`),
        );
        const [deleted, ...created] = await Promise.all([user.api.request(DELETE_ACCOUNT, { password: user.password }), ...creates]);
        expect(deleted.errors).toBeUndefined();
        for (const result of created) expect(result.errors === undefined || codeOf(result) === 'UNAUTHENTICATED').toBe(true);
        const left = await adminQuery<{ n: string }>(
          `select (select count(*) from tasks where owner_id = $1) + (select count(*) from task_changes where owner_id = $1) as n`,
          [user.user.id],
          t.db.url,
        );
        expect(Number(left.rows[0]!.n)).toBe(0);
      }
    });
  });
});

describe('refresh races between two instances', () => {
  const t = instancesForTests(SECRET);

  /** Both instances spend one token; exactly one gets a pair; then the session has ended everywhere. */
  async function bothSpend(user: Awaited<ReturnType<typeof signUpUser>>, spend: () => Promise<Awaited<ReturnType<typeof refresh>>[]>) {
    const results = await spend();
    const pairs = results.flatMap((result) => (result.data?.refreshSession ? [result.data.refreshSession] : []));
    expect(pairs).toHaveLength(1);
    expect(results.map(codeOf).filter(Boolean)).toEqual(['UNAUTHENTICATED']);
    // The loser presented a spent token: reuse. The winner's new pair is refused too, on both instances.
    for (const server of [t.a, t.b]) {
      await waitFor(async () => (await access(server.url, pairs[0]!.token)) === 'UNAUTHENTICATED', 2_000);
      await waitFor(async () => (await access(server.url, user.token)) === 'UNAUTHENTICATED', 2_000);
    }
    expect(codeOf(await refresh(t.b.url, pairs[0]!.refreshToken))).toBe('UNAUTHENTICATED');
  }

  it('one after the other: the second finds it spent', async () => {
    const user = await signUpUser(t.a.url);
    // Both instances have seen the session live, so each refuses it from memory only once told.
    expect([await access(t.a.url, user.token), await access(t.b.url, user.token)]).toEqual(['OK', 'OK']);
    await bothSpend(user, async () => [await refresh(t.a.url, user.refreshToken), await refresh(t.b.url, user.refreshToken)]);
  });

  it('at the same moment: they take turns on the token’s row, and the second finds it spent', async () => {
    const user = await signUpUser(t.b.url);
    // Hold the token's row, so that both refreshes are waiting on it before either can spend it.
    const holder = new pg.Client({ connectionString: t.db.url });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query(
        `select 1 from refresh_tokens where session_id = (select id from sessions where user_id = $1) and spent_at is null for update`,
        [user.user.id],
      );
      const racing = Promise.all([refresh(t.a.url, user.refreshToken), refresh(t.b.url, user.refreshToken)]);
      await waitFor(async () => (await lockWaiters(holder)) >= 2);
      await holder.query('commit');
      await bothSpend(user, () => racing);
    } finally {
      await holder.end();
    }
  });

  it('reaches the other instance within 2 s of a sign-out', async () => {
    const user = await signUpUser(t.a.url);
    const clients: Api[] = [api(t.a.url, user.token), api(t.b.url, user.token)];
    for (const client of clients) expect((await client.request(ME)).errors).toBeUndefined();
    await api(t.a.url, user.token).ok(SIGN_OUT, {});
    await waitFor(async () => (await access(t.b.url, user.token)) === 'UNAUTHENTICATED', 2_000);
    expect(await access(t.a.url, user.token)).toBe('UNAUTHENTICATED');
  });
  it('answers from memory while it listens: a session removed without an announcement is believed until one comes', async () => {
    const user = await signUpUser(t.a.url);
    const sessionId = sessionIdOf(user.token);
    // Each instance starts listening when it first checks a session.
    for (const server of [t.a, t.b]) expect(await access(server.url, user.token)).toBe('OK');
    await waitFor(async () => (await sessionListeners(t.db.url)) >= 2);
    // Past the second a session read without the listener is believed; read again, now with the listener in place.
    await sleep(1_100);
    expect(await access(t.b.url, user.token)).toBe('OK');
    // Removed behind the server's back, with no announcement: b does not read it again per request.
    await adminQuery('delete from sessions where id = $1', [sessionId], t.db.url);
    await sleep(1_100);
    expect(await access(t.b.url, user.token)).toBe('OK');
    await adminQuery(`select pg_notify('sessions_ended', $1)`, [sessionId], t.db.url);
    await waitFor(async () => (await access(t.b.url, user.token)) === 'UNAUTHENTICATED', 2_000);
  });
});

describe('session limits and pruning', () => {
  const t = serverForTests({ env: { JWT_SECRET: SECRET, SESSIONS_PER_USER: '2' } });

  it('ends the least recently used session past SESSIONS_PER_USER', async () => {
    const user = await signUpUser(t.server.url);
    const second = await signIn(t.server.url, user.user.email, user.password);
    // The first is used (refreshed) after the second: the second is now the least recently used.
    const { data } = await refresh(t.server.url, user.refreshToken);
    const first = data!.refreshSession;
    const third = await signIn(t.server.url, user.user.email, user.password);
    expect(await access(t.server.url, second.token)).toBe('UNAUTHENTICATED');
    expect(codeOf(await refresh(t.server.url, second.refreshToken))).toBe('UNAUTHENTICATED');
    for (const pair of [first, third]) expect(await access(t.server.url, pair.token)).toBe('OK');
    const { sessions } = await api(t.server.url, third.token).ok<{ sessions: { id: string }[] }>(SESSIONS);
    expect(sessions.map((s) => s.id).sort()).toEqual([sessionIdOf(first.token), sessionIdOf(third.token)].sort());
  });
});

describe('pruning', () => {
  const t = serverForTests({ env: { JWT_SECRET: SECRET } });

  it('removes expired sessions and expired refresh tokens, keeping live ones', async () => {
    // Written before the instance makes its first session: its first prune is due then.
    const [{ id }] = (
      await adminQuery<{ id: string }>(
        `insert into users (id, email, password_hash, created_at, updated_at)
         values (gen_random_uuid(), $1, 'x', now(), now()) returning id`,
        [uniqueEmail()],
        t.db.url,
      )
    ).rows as [{ id: string }];
    await adminQuery(
      `with s as (insert into sessions (id, user_id, expires_at) values (gen_random_uuid(), $1, now() - interval '1 minute'),
                                                                   (gen_random_uuid(), $1, now() + interval '1 day') returning id, expires_at)
       insert into refresh_tokens (hash, session_id, expires_at, spent_at)
       select sha256(gen_random_uuid()::text::bytea), id, expires_at, null from s
       union all select sha256(gen_random_uuid()::text::bytea), id, now() - interval '1 second', now() - interval '1 hour' from s where expires_at > now()`,
      [id],
      t.db.url,
    );
    const count = async (sql: string) => Number((await adminQuery<{ n: string }>(sql, [], t.db.url)).rows[0]!.n);
    const expired = () =>
      count(
        `select (select count(*) from sessions where expires_at < now()) + (select count(*) from refresh_tokens where expires_at < now()) as n`,
      );
    expect(await expired()).toBe(3);
    await signUpUser(t.server.url);
    await waitFor(async () => (await expired()) === 0);
    // The live session and its live token stay, and so do the new user's.
    expect(await count(`select count(*) as n from sessions`)).toBe(2);
    expect(await count(`select count(*) as n from refresh_tokens`)).toBe(2);
  });
});
