import { Ctx, Query, Resolver, Root, Subscription } from 'type-graphql';
import type { Context } from '../../src/graphql/context.js';
import { api, SIGN_UP, signUpUser } from '../support/api.js';
import { serverForTests } from '../support/server.js';
import { CREATE_TASK, LIST_TASKS } from '../support/tasks.js';
import { wsSession } from '../support/subscriptions.js';

/** Failures a bug could cause: an error carrying internals, and a real SQL error. */
@Resolver()
class FailingResolver {
  @Query(() => Boolean)
  leakyFailure(): boolean {
    throw new Error('select password_hash from users failed on postgresql://app:hunter2@db.internal:5432/todo');
  }

  @Query(() => Boolean)
  async sqlFailure(@Ctx() { em }: Context): Promise<boolean> {
    await em.getConnection().execute('select * from table_that_does_not_exist');
    return true;
  }

  @Subscription(() => Boolean, {
    subscribe: async function* () {
      yield 1;
    },
  })
  leakyEvent(@Root() _event: number): boolean {
    throw new Error('select password_hash from users failed on postgresql://app:hunter2@db.internal:5432/todo');
  }
}

const SECRET = 'production-signing-key-0123456789-abcdef';
const FORBIDDEN = [
  /stacktrace/i,
  /\bselect\b/i,
  /postgres(ql)?:\/\//i,
  /hunter2/,
  /\$2[aby]\$/,
  /table_that_does_not_exist/,
  /at .*\.(ts|js):\d+/,
];

describe('errors in production', () => {
  const t = serverForTests({
    proxied: true,
    env: { NODE_ENV: 'production', JWT_SECRET: SECRET, DB_POOL_ACQUIRE_TIMEOUT_MS: '1000', DB_CONNECT_RETRIES: '0' },
    resolvers: [FailingResolver],
  });

  const raw = async (query: string, variables?: Record<string, unknown>, token?: string) => {
    const res = await fetch(`${t.server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    return { status: res.status, text: await res.text() };
  };
  const expectClean = (text: string) => {
    for (const pattern of FORBIDDEN) expect(text).not.toMatch(pattern);
  };

  it('masks unexpected errors as INTERNAL_SERVER_ERROR and logs them in full with the request id', async () => {
    for (const query of ['{ leakyFailure }', '{ sqlFailure }']) {
      const { status, text } = await raw(query);
      expect(status).toBe(200);
      expectClean(text);
      const body = JSON.parse(text);
      expect(body.errors).toEqual([
        {
          message: 'Internal server error',
          locations: expect.any(Array),
          path: [query.slice(2, -2)],
          extensions: { code: 'INTERNAL_SERVER_ERROR' },
        },
      ]);
    }
    const logged = t.server.logs.filter((line) => line.msg === 'unexpected error');
    expect(logged).toHaveLength(2);
    expect(logged[0]).toMatchObject({ requestId: expect.any(String), err: { message: expect.stringContaining('select password_hash') } });
    expect(JSON.stringify(logged)).not.toContain('hunter2');
    expect(logged[1]).toMatchObject({ err: { message: expect.stringContaining('table_that_does_not_exist') } });
  });

  it('gives client errors their codes, without stack traces', async () => {
    const user = await signUpUser(t.server.url);
    const cases: [string, Record<string, unknown> | undefined, string | undefined, string, number][] = [
      ['{ health { status ', undefined, undefined, 'GRAPHQL_PARSE_FAILED', 400],
      ['{ nope }', undefined, undefined, 'GRAPHQL_VALIDATION_FAILED', 400],
      [CREATE_TASK, { input: { title: 5 } }, user.token, 'BAD_USER_INPUT', 400],
      [CREATE_TASK, { input: { title: '  ' } }, user.token, 'BAD_USER_INPUT', 200],
      [LIST_TASKS, {}, 'forged.token.value', 'UNAUTHENTICATED', 200],
      [`mutation { deleteTask(id: "00000000-0000-4000-8000-000000000000") }`, undefined, user.token, 'NOT_FOUND', 200],
      [SIGN_UP, { input: { email: user.user.email, password: 'whatever-password' } }, undefined, 'CONFLICT', 200],
    ];
    for (const [query, variables, token, code, status] of cases) {
      const response = await raw(query, variables, token);
      expect([code, response.status]).toEqual([code, status]);
      expect(JSON.parse(response.text).errors[0].extensions.code).toBe(code);
      expectClean(response.text);
    }
  });

  it('turns an unreachable database into DATABASE_UNAVAILABLE', async () => {
    const user = await signUpUser(t.server.url);
    await t.proxy.setMode('refuse');
    try {
      const { status, text } = await raw(LIST_TASKS, {}, user.token);
      expect(status).toBe(200);
      expectClean(text);
      expect(JSON.parse(text).errors[0].extensions.code).toBe('DATABASE_UNAVAILABLE');
    } finally {
      await t.proxy.setMode('forward');
    }
  });

  it('keeps introspection closed', async () => {
    const { status, text } = await raw('{ __schema { types { name } } }');
    expect(status).toBe(400);
    expect(JSON.parse(text).errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('never echoes the password or its hash in a sign-up answer', async () => {
    const password = 'a-password-to-hide-123';
    const result = await api(t.server.url).request(SIGN_UP, { input: { email: 'hidden@example.com', password } });
    expect(JSON.stringify(result)).not.toContain(password);
    expectClean(JSON.stringify(result));
  });

  it('masks subscription errors over WebSocket as over HTTP, and gives no schema hints', async () => {
    const user = await signUpUser(t.server.url);
    const session = wsSession(t.server.url, user.token);
    try {
      const leaky = session.subscribe({}, 'subscription { leakyEvent }');
      await leaky.ended;
      expectClean(JSON.stringify(leaky.results));
      expect(leaky.errors).toEqual([
        {
          message: 'Internal server error',
          locations: expect.any(Array),
          path: ['leakyEvent'],
          extensions: { code: 'INTERNAL_SERVER_ERROR' },
        },
      ]);
      expect(
        t.server.logs.some(
          (line) => line.msg === 'subscription failed' && JSON.stringify(line).includes('select password_hash from users'),
        ),
      ).toBe(true);
      const typo = session.subscribe({}, 'subscription { taskChanges { curser } }');
      const refused = (await typo.ended) as { message: string; extensions: { code: string } }[];
      expect(refused.map((error) => error.extensions.code)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
      expect(refused[0]!.message).not.toMatch(/Did you mean/);
      const introspection = session.subscribe({}, 'subscription { taskChanges { __type(name: "Task") { name } } }');
      expect(((await introspection.ended) as { extensions: { code: string } }[])[0]!.extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    } finally {
      await session.close();
    }
  });
});
