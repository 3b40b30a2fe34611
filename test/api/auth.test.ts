import { SignJWT } from 'jose';
import { api, SIGN_UP, signUpUser, uniqueEmail, type SignedUp } from '../support/api.js';
import { serverForTests } from '../support/server.js';

const SECRET = 'test-signing-key-that-is-long-enough-0123456789';
const SIGN_IN = `mutation SignIn($email: String!, $password: String!) { signIn(email: $email, password: $password) { token expiresAt user { id email } } }`;
const ME = `{ me { id email name } }`;

describe('accounts and tokens', () => {
  const t = serverForTests({ env: { JWT_SECRET: SECRET, JWT_EXPIRES_IN: '15m' } });

  it('signs up with a trimmed, lower-cased email and returns a token that works', async () => {
    const email = uniqueEmail('New');
    const { signUp } = await api(t.server.url).ok<{ signUp: SignedUp }>(SIGN_UP, {
      input: { email: `  ${email.toUpperCase()} `, password: 'correct horse battery', name: '  Ada  ' },
    });
    expect(signUp.user).toMatchObject({ email: email.toLowerCase(), name: 'Ada' });
    const expiresIn = Date.parse(signUp.expiresAt) - Date.now();
    expect(expiresIn).toBeGreaterThan(14 * 60_000);
    expect(expiresIn).toBeLessThanOrEqual(15 * 60_000);
    const { me } = await api(t.server.url, signUp.token).ok<{ me: { id: string } }>(ME);
    expect(me.id).toBe(signUp.user.id);
  });

  it('stores only a bcrypt hash of the password, and never returns it', async () => {
    const user = await signUpUser(t.server.url);
    const { rows } = await t.db.query<{ password_hash: string }>('select password_hash from users where id = $1', [user.user.id]);
    expect(rows[0]!.password_hash).toMatch(/^\$2[aby]\$04\$/);
    expect(rows[0]!.password_hash).not.toContain(user.password);
    const result = await user.api.request(`{ me { passwordHash } }`);
    expect(result.status).toBe(400);
    expect(result.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('refuses an email that is taken, whatever its case, with CONFLICT', async () => {
    const email = uniqueEmail();
    await signUpUser(t.server.url, email);
    const code = await api(t.server.url).code(SIGN_UP, { input: { email: email.replace('user', 'USER'), password: 'another password' } });
    expect(code).toBe('CONFLICT');
    const { rows } = await t.db.query('select 1 from users where email = $1', [email]);
    expect(rows).toHaveLength(1);
  });

  it('refuses passwords outside 8..128 characters and malformed emails, naming the field', async () => {
    const attempt = (input: Record<string, unknown>) => api(t.server.url).request(SIGN_UP, { input });
    for (const [input, field] of [
      [{ email: uniqueEmail(), password: 'short' }, 'password'],
      [{ email: uniqueEmail(), password: 'x'.repeat(129) }, 'password'],
      [{ email: 'not-an-email', password: 'long enough' }, 'email'],
      [{ email: uniqueEmail(), password: 'long enough', name: 'n'.repeat(201) }, 'name'],
    ] as const) {
      const { errors } = await attempt(input);
      expect(errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    }
    const ok = await attempt({ email: uniqueEmail(), password: 'p'.repeat(128) });
    expect(ok.errors).toBeUndefined();
  });

  it('keeps every character of a long password significant', async () => {
    const password = `${'a'.repeat(100)}1`;
    const user = await signUpUser(t.server.url, uniqueEmail(), password);
    const code = await api(t.server.url).code(SIGN_IN, { email: user.user.email, password: `${'a'.repeat(100)}2` });
    expect(code).toBe('UNAUTHENTICATED');
  });

  it('signs in with the email in any case and the right password', async () => {
    const user = await signUpUser(t.server.url);
    const { signIn } = await api(t.server.url).ok<{ signIn: SignedUp }>(SIGN_IN, {
      email: ` ${user.user.email.toUpperCase()}`,
      password: user.password,
    });
    expect(signIn.user.id).toBe(user.user.id);
    expect(signIn.token).not.toBe('');
  });

  it('answers a wrong email and a wrong password alike, after the same bcrypt work', async () => {
    const user = await signUpUser(t.server.url);
    const client = api(t.server.url);
    const wrongEmail = { email: uniqueEmail('nobody'), password: user.password };
    const wrongPassword = { email: user.user.email, password: 'wrong password' };
    const a = await client.request(SIGN_IN, wrongEmail);
    const b = await client.request(SIGN_IN, wrongPassword);
    expect(a.errors).toEqual(b.errors);
    expect(a.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');

    // Both paths do the same bcrypt work, one comparison each (counted on /metrics), so that timing cannot tell them
    // apart; the dummy hash an unknown email is compared with has the configured cost, like every stored one.
    const compares = async () =>
      Number(/^password_hashes_total\{kind="compare"\} (\d+)/m.exec((await t.server.get('/metrics')).body)?.[1] ?? 0);
    const before = await compares();
    await client.request(SIGN_IN, wrongEmail);
    expect(await compares()).toBe(before + 1);
    await client.request(SIGN_IN, wrongPassword);
    expect(await compares()).toBe(before + 2);
  });

  it('answers me with null when no token is sent', async () => {
    expect(await api(t.server.url).ok(ME)).toEqual({ me: null });
  });

  it('refuses tampered, expired, malformed and foreign tokens with UNAUTHENTICATED, never a 500', async () => {
    const user = await signUpUser(t.server.url);
    const [header, payload, signature] = user.token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    const tampered = [
      header,
      Buffer.from(JSON.stringify({ ...claims, sub: '00000000-0000-4000-8000-000000000000' })).toString('base64url'),
      signature,
    ].join('.');
    const key = new TextEncoder().encode(SECRET);
    const expired = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(user.user.id)
      .setIssuer('todo-graphql-server')
      .setIssuedAt(Math.floor(Date.now() / 1000) - 7200)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
      .sign(key);
    const foreign = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(user.user.id)
      .setIssuer('todo-graphql-server')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('another-secret-that-is-long-enough-too!!'));
    const unsigned = [Buffer.from('{"alg":"none"}').toString('base64url'), payload, ''].join('.');
    for (const token of [tampered, expired, foreign, unsigned, 'not-a-jwt', `${user.token}x`]) {
      const result = await api(t.server.url, token).request(ME);
      expect(result.status).toBe(200);
      expect(result.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      const tasks = await api(t.server.url, token).request(`{ tasks { edges { node { id } } } }`);
      expect(tasks.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
    const raw = await fetch(`${t.server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Basic dXNlcjpwYXNz' },
      body: JSON.stringify({ query: ME }),
    });
    const body = (await raw.json()) as { errors: { extensions: { code: string } }[] };
    expect(body.errors[0]!.extensions.code).toBe('UNAUTHENTICATED');
  });

  it('needs a token for every task operation', async () => {
    const anonymous = api(t.server.url);
    const id = '00000000-0000-4000-8000-000000000000';
    for (const [document, variables] of [
      [`{ tasks { totalCount } }`, {}],
      [`query($id: ID!) { task(id: $id) { id } }`, { id }],
      [`mutation { createTask(input: { title: "x" }) { id } }`, {}],
      [`mutation($id: ID!) { updateTask(id: $id, input: { title: "y" }) { id } }`, { id }],
      [`mutation($id: ID!) { completeTask(id: $id) { id } }`, { id }],
      [`mutation($id: ID!) { deleteTask(id: $id) }`, { id }],
    ] as const) {
      expect(await anonymous.code(document, variables)).toBe('UNAUTHENTICATED');
    }
    const { rows } = await t.db.query('select count(*)::int as n from tasks');
    expect(rows[0]).toEqual({ n: 0 });
  });
});
