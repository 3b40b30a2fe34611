import { signUpUser } from '../support/api.js';
import { serverForTests, startTestServer } from '../support/server.js';
import { TASK_FIELDS } from '../support/tasks.js';

type User = Awaited<ReturnType<typeof signUpUser>>;

describe('request limits', () => {
  const t = serverForTests({ env: { LOG_LEVEL: 'debug', HTTP_BODY_LIMIT: '16kb' } });
  let user: User;

  beforeAll(async () => {
    user = await signUpUser(t.server.url);
  });

  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${t.server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.token}`, ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const SESSION_CHECK = /\bfrom sessions\b/;
  const sqlDuring = async (work: () => Promise<unknown>) => {
    const before = t.server.logs.length;
    await work();
    // Not the check of the caller's session, which an instance makes when it has not heard of it for a while.
    return t.server.logs.slice(before).filter((line) => line.component === 'mikro-orm' && !SESSION_CHECK.test(String(line.msg)));
  };

  it('serves a full page of 100 tasks with every field', async () => {
    const result = await user.api.request(
      `{ tasks(first: 100) { totalCount edges { cursor node { ${TASK_FIELDS} } } pageInfo { endCursor } } }`,
    );
    expect(result.errors).toBeUndefined();
  });

  it('refuses a query over the cost limit with QUERY_TOO_COMPLEX and 400, before any resolver runs', async () => {
    const page = `tasks(first: 100) { edges { node { ${TASK_FIELDS} } } }`;
    let result: Awaited<ReturnType<typeof user.api.request>> | undefined;
    const sql = await sqlDuring(async () => {
      result = await user.api.request(`{ a: ${page} b: ${page} }`);
    });
    expect(result!.status).toBe(400);
    expect(result!.data ?? null).toBeNull();
    expect(result!.errors?.[0]?.extensions).toMatchObject({ code: 'QUERY_TOO_COMPLEX', maxCost: 3000 });
    expect(sql).toEqual([]);
  });

  it('counts the page size of variables, and every alias', async () => {
    const query = `query($n: Int) { tasks(first: $n) { edges { node { ${TASK_FIELDS} } } } }`;
    expect((await user.api.request(query, { n: 100 })).errors).toBeUndefined();
    const aliases = Array.from({ length: 4 }, (_, i) => `t${i}: tasks(first: 60) { edges { node { ${TASK_FIELDS} } } }`).join('\n');
    expect((await user.api.request(`{ ${aliases} }`)).errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COMPLEX');
  });

  it('refuses a query over the depth limit, also through fragments and inline fragments', async () => {
    const shallow = await startTestServer({ databaseUrl: t.db.url, env: { GRAPHQL_MAX_DEPTH: '4' } });
    try {
      const client = (await import('../support/api.js')).api(shallow.url, (await signUpUser(shallow.url)).token);
      expect((await client.request(`{ tasks { edges { node { id } } } health { database { pool { max } } } }`)).errors).toBeUndefined();
      for (const query of [
        `{ tasks { edges { node { owner { id } } } } }`,
        `fragment Owner on Task { owner { email } } { tasks { edges { node { ...Owner } } } }`,
        `{ tasks { edges { node { ... on Task { owner { id } } } } } }`,
      ]) {
        const result = await client.request(query);
        expect(result.status).toBe(400);
        expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'QUERY_TOO_COMPLEX', depth: 5, maxDepth: 4 });
      }
    } finally {
      await shallow.stop();
    }
  });

  it('allows introspection outside production, however deep', async () => {
    const { getIntrospectionQuery } = await import('graphql');
    const result = await user.api.request(getIntrospectionQuery());
    expect(result.errors).toBeUndefined();
  });

  it('refuses a body over the configured size with 413 and a JSON error', async () => {
    const res = await post({ query: `{ health { status } }`, variables: { padding: 'x'.repeat(20 * 1024) } });
    expect(res.status).toBe(413);
    const body = (await res.json()) as { errors: { extensions: { code: string } }[] };
    expect(body.errors[0]!.extensions.code).toBe('BAD_REQUEST');
  });

  it('answers malformed JSON with 400, not an HTML page', async () => {
    const res = await post('{"query": ');
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/json/);
  });

  it('keeps CSRF prevention on: a simple request without a preflight header is refused', async () => {
    const get = await fetch(`${t.server.url}/graphql?query=${encodeURIComponent('{ health { status } }')}`);
    expect(get.status).toBe(400);
    const form = await fetch(`${t.server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ query: '{ health { status } }' }),
    });
    expect(form.status).toBe(400);
    const preflighted = await fetch(`${t.server.url}/graphql?query=${encodeURIComponent('{ health { status } }')}`, {
      headers: { 'apollo-require-preflight': 'true' },
    });
    expect(preflighted.status).toBe(200);
  });
});
