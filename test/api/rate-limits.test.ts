import { request } from 'node:http';
import { SIGN_UP, signUpUser, uniqueEmail } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { serverForTests, startTestServer, type TestServer } from '../support/server.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: { data?: Record<string, unknown> | null; errors?: { message: string; extensions?: Record<string, unknown> }[] };
}

/** A GraphQL POST from a given loopback address (all of 127.0.0.0/8 is this machine), as a client elsewhere. */
function postFrom(
  from: string,
  server: TestServer,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<Answer> {
  const url = new URL(`${server.url}/graphql`);
  const body = JSON.stringify({ query, variables });
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        localAddress: from,
        headers: { 'content-type': 'application/json', ...headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const SIGN_IN = `mutation($email: String!, $password: String!) { signIn(email: $email, password: $password) { token } }`;
const codeOf = (answer: Answer) => answer.body.errors?.[0]?.extensions?.code;

describe('rate limits shared by two instances', () => {
  let db: TestDatabase;
  let a: TestServer;
  let b: TestServer;
  const env = { AUTH_RATE_LIMIT: '5', COST_RATE_LIMIT: '400', JWT_SECRET: 'one-secret-for-both-instances-0123456789' };

  beforeAll(async () => {
    db = await createTestDatabase();
    a = await startTestServer({ databaseUrl: db.url, directUrl: db.directUrl, env });
    b = await startTestServer({ databaseUrl: db.url, directUrl: db.directUrl, env: { ...env, MIGRATE_ON_START: 'false' } });
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await db?.drop();
  });

  it('count sign-in attempts per address across instances, and answer 429 with Retry-After past the limit', async () => {
    const email = uniqueEmail('owner');
    const password = 'the owner’s password';
    expect(codeOf(await postFrom('127.0.0.5', a, SIGN_UP, { input: { email, password } }))).toBeUndefined();
    for (const server of [b, a, b, a, b]) {
      expect(codeOf(await postFrom('127.0.0.2', server, SIGN_IN, { email, password: 'guessing-1234' }))).toBe('UNAUTHENTICATED');
    }
    const refused = await postFrom('127.0.0.2', b, SIGN_IN, { email, password });
    expect(refused.status).toBe(429);
    expect(codeOf(refused)).toBe('RATE_LIMITED');
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.body.errors![0]!.extensions!.retryAfterSeconds).toBe(retryAfter);
    // The attacker's address is spent; the owner, from another address, signs in as usual.
    const owner = await postFrom('127.0.0.3', a, SIGN_IN, { email, password });
    expect(owner.body.errors).toBeUndefined();
  });

  it('ignore a forged X-Forwarded-For when no proxy is trusted', async () => {
    const email = uniqueEmail('forger');
    for (let i = 0; i < 5; i++) {
      const answer = await postFrom('127.0.0.4', a, SIGN_IN, { email, password: 'guessing-1234' }, { 'x-forwarded-for': `10.0.0.${i}` });
      expect(codeOf(answer)).toBe('UNAUTHENTICATED');
    }
    const refused = await postFrom('127.0.0.4', b, SIGN_IN, { email, password: 'guessing-1234' }, { 'x-forwarded-for': '10.9.9.9' });
    expect(codeOf(refused)).toBe('RATE_LIMITED');
  });

  it('spend one cost budget per user across instances, telling the client what is left', async () => {
    const user = await signUpUser(a.url);
    const query = '{ tasks(first: 5) { edges { node { id title } } } }';
    const auth = { authorization: `Bearer ${user.token}` };
    const first = await postFrom('127.0.0.6', a, query, {}, auth);
    expect(first.body.errors).toBeUndefined();
    expect(first.headers['ratelimit-limit']).toBe('400');
    const cost = 400 - Number(first.headers['ratelimit-remaining']);
    expect(cost).toBeGreaterThan(10);
    expect(Number(first.headers['ratelimit-reset'])).toBeGreaterThan(0);
    let answers = 1;
    let last = first;
    while (last.status === 200 && answers < 100) {
      last = await postFrom('127.0.0.6', answers % 2 ? b : a, query, {}, auth);
      if (last.status === 200) expect(last.body.errors).toBeUndefined();
      answers += 1;
    }
    expect(last.status).toBe(429);
    expect(codeOf(last)).toBe('RATE_LIMITED');
    expect(last.headers['ratelimit-remaining']).toBe('0');
    expect(last.headers['ratelimit-limit']).toBe('400');
    expect(Number(last.headers['ratelimit-reset'])).toBe(Number(last.headers['retry-after']));
    // Both instances together served no more than the budget pays for.
    expect((answers - 1) * cost).toBeLessThanOrEqual(400);
    expect(answers - 1).toBeGreaterThanOrEqual(Math.floor(400 / cost) - 2);
    // Requests arriving together cannot spend more than the budget either.
    const other = await signUpUser(a.url);
    const together = await Promise.all(
      Array.from({ length: 40 }, (_, i) => postFrom('127.0.0.6', i % 2 ? a : b, query, {}, { authorization: `Bearer ${other.token}` })),
    );
    const served = together.filter((answer) => answer.status === 200);
    expect(served.every((answer) => answer.body.errors === undefined)).toBe(true);
    expect(served.length * cost).toBeLessThanOrEqual(400);
    expect(together.filter((answer) => codeOf(answer) === 'RATE_LIMITED').length).toBe(40 - served.length);
    // Anonymous requests are not charged to anyone.
    expect((await postFrom('127.0.0.6', a, '{ health { status } }')).headers['ratelimit-limit']).toBeUndefined();
  });
});

describe('the cost budget in the steady state', () => {
  const t = serverForTests({ env: { COST_RATE_LIMIT: '1000000' } });

  it('sends one statement per lease of a twentieth of the budget, not one per request, even for requests arriving together', async () => {
    const user = await signUpUser(t.server.url);
    await Promise.all(Array.from({ length: 30 }, () => user.api.ok('{ tasks(first: 5) { edges { node { id } } } }')));
    for (let i = 0; i < 10; i++) await user.api.ok('{ tasks(first: 5) { edges { node { id } } } }');
    const { rows } = await t.db.query<{ points: number }>(`select points from rate_limits where key = $1`, [`cost:${user.user.id}`]);
    expect(rows).toEqual([{ points: 50_000 }]);
  });
});

describe('rate limits while the database is unreachable', () => {
  const t = serverForTests({
    proxied: true,
    env: { AUTH_RATE_LIMIT: '3', DB_POOL_ACQUIRE_TIMEOUT_MS: '300', DB_CONNECT_TIMEOUT_MS: '300' },
  });

  it('keep counting in memory', async () => {
    await t.proxy.setMode('refuse');
    try {
      for (let i = 0; i < 3; i++) {
        expect(codeOf(await postFrom('127.0.0.7', t.server, SIGN_IN, { email: 'x@example.com', password: 'guessing-1234' }))).toBe(
          'DATABASE_UNAVAILABLE',
        );
      }
      expect(codeOf(await postFrom('127.0.0.7', t.server, SIGN_IN, { email: 'x@example.com', password: 'guessing-1234' }))).toBe(
        'RATE_LIMITED',
      );
    } finally {
      await t.proxy.setMode('forward');
    }
  });
});

describe('rate limits behind one trusted proxy (TRUST_PROXY=1)', () => {
  const t = serverForTests({ env: { AUTH_RATE_LIMIT: '2', TRUST_PROXY: '1' } });

  it('count per address the proxy appended, whatever the client wrote before it', async () => {
    const attempt = (forwardedFor: string) =>
      postFrom(
        '127.0.0.8',
        t.server,
        SIGN_IN,
        { email: 'nobody@example.com', password: 'guessing-1234' },
        { 'x-forwarded-for': forwardedFor },
      );
    expect(codeOf(await attempt('203.0.113.1'))).toBe('UNAUTHENTICATED');
    expect(codeOf(await attempt('198.51.100.7, 203.0.113.1'))).toBe('UNAUTHENTICATED');
    expect(codeOf(await attempt('10.0.0.1, 203.0.113.1'))).toBe('RATE_LIMITED');
    expect(codeOf(await attempt('203.0.113.2'))).toBe('UNAUTHENTICATED');
    // Addresses of one IPv6 /64 share an allowance.
    expect(codeOf(await attempt('2001:db8::1'))).toBe('UNAUTHENTICATED');
    expect(codeOf(await attempt('2001:db8::2'))).toBe('UNAUTHENTICATED');
    expect(codeOf(await attempt('2001:db8::3'))).toBe('RATE_LIMITED');
  });
});

describe('password checks and refreshes of signed-in users', () => {
  const t = serverForTests({ env: { AUTH_RATE_LIMIT: '3', TRUST_PROXY: '1' } });
  const CHANGE = `mutation($current: String!) { changePassword(currentPassword: $current, newPassword: "a brand new password") { token } }`;
  const DELETE = `mutation($password: String!) { deleteAccount(password: $password) }`;
  const REFRESH = `mutation($refreshToken: String!) { refreshSession(refreshToken: $refreshToken) { token } }`;
  const from = (address: string, query: string, variables: Record<string, unknown>, token?: string) =>
    postFrom('127.0.0.9', t.server, query, variables, {
      'x-forwarded-for': address,
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    });

  it('count changePassword and deleteAccount against AUTH_RATE_LIMIT per address', async () => {
    const user = await signUpUser(t.server.url);
    for (const query of [CHANGE, DELETE, CHANGE]) {
      const answer = await from('198.51.100.1', query, { current: 'guessing-1234', password: 'guessing-1234' }, user.token);
      expect(codeOf(answer)).toBe('UNAUTHENTICATED');
    }
    const refused = await from('198.51.100.1', DELETE, { password: user.password }, user.token);
    expect([refused.status, codeOf(refused)]).toEqual([429, 'RATE_LIMITED']);
    // Refused before the password was checked: the account is still there.
    expect((await from('198.51.100.2', `{ me { id } }`, {}, user.token)).body.data).toEqual({ me: { id: user.user.id } });
  });

  it('count them per account too, whatever address they come from', async () => {
    const user = await signUpUser(t.server.url);
    // ACCOUNT_PASSWORD_CHECKS (10) per 15 minutes, each from a fresh address.
    for (let i = 0; i < 10; i++) {
      const answer = await from(`203.0.113.${100 + i}`, CHANGE, { current: 'guessing-1234' }, user.token);
      expect(codeOf(answer)).toBe('UNAUTHENTICATED');
    }
    const refused = await from('203.0.113.200', CHANGE, { current: user.password }, user.token);
    expect([refused.status, codeOf(refused)]).toEqual([429, 'RATE_LIMITED']);
    // Another account is not held back.
    const other = await signUpUser(t.server.url);
    expect(codeOf(await from('203.0.113.201', CHANGE, { current: other.password }, other.token))).toBeUndefined();
  });

  it('count refreshSession per address, apart from sign-ins', async () => {
    for (let i = 0; i < 3; i++)
      expect(codeOf(await from('192.0.2.1', REFRESH, { refreshToken: `not-a-token-${i}` }))).toBe('UNAUTHENTICATED');
    const refused = await from('192.0.2.1', REFRESH, { refreshToken: 'not-a-token' });
    expect([refused.status, codeOf(refused)]).toEqual([429, 'RATE_LIMITED']);
    // Sign-ins from that address still have their own allowance.
    expect(codeOf(await from('192.0.2.1', SIGN_IN, { email: 'nobody@example.com', password: 'guessing-1234' }))).toBe('UNAUTHENTICATED');
  });
});
