import { getIntrospectionQuery } from 'graphql';
import { api, signUpUser } from '../support/api.js';
import { serverForTests } from '../support/server.js';
import { TASK_FIELDS } from '../support/tasks.js';

const SECRET = 'production-signing-key-0123456789-abcdef';

/** `levels` fragments, each spreading the one below `width` times: width^levels copies of `leaf`. */
function fanOut(levels: number, width: number, on: string, leaf: string): { fragments: string; top: string } {
  let fragments = `fragment F0 on ${on} { ${leaf} }\n`;
  for (let i = 1; i <= levels; i++) fragments += `fragment F${i} on ${on} { ${`...F${i - 1} `.repeat(width)}}\n`;
  return { fragments, top: `...F${levels}` };
}

const HOSTILE: Record<string, string> = (() => {
  const query = fanOut(10, 10, 'Query', 'health { status }');
  const task = fanOut(8, 10, 'Task', 'id title owner { id }');
  const padding = Array.from({ length: 40 }, (_, i) => `fragment P${i} on Query { __typename }`).join('\n');
  const page = `tasks(first: 100) { edges { node { ${TASK_FIELDS} } } }`;
  return {
    'fan-out of fragments on Query, under 1 KB': `{ ${query.top} }\n${query.fragments}`,
    'fan-out of fragments inside a page of tasks': `{ tasks(first: 100) { edges { node { ${task.top} } } } }\n${task.fragments}`,
    'a costly document padded with unused fragments': `{ a: ${page} b: ${page} c: ${page} }\n${padding}`,
    'the same costly document with padding fragments spread': `{ a: ${page} b: ${page} ${Array.from({ length: 40 }, (_, i) => `...P${i}`).join(' ')} }\n${padding}`,
    'hundreds of aliases': `{ ${Array.from({ length: 400 }, (_, i) => `a${i}: __typename`).join(' ')} }`,
    'hundreds of aliases of counted lists': `{ ${Array.from({ length: 300 }, (_, i) => `l${i}: tasks(first: 1) { totalCount }`).join(' ')} }`,
    'the same field hundreds of times (quadratic for validation)': `{ ${'health { status } '.repeat(450)} }`,
    'nesting hundreds of levels deep': `{ ${'a { '.repeat(600)}b${' }'.repeat(600)} }`,
    'a 100 KB document': `{ ${'__typename '.repeat(9000)} }`,
    'two signIn in one request': `mutation { a: signIn(email: "a@example.com", password: "whatever1") { token } b: signIn(email: "b@example.com", password: "whatever2") { token } }`,
    'signUp and signIn in one request through a fragment': `mutation { ...M ...M } fragment M on Mutation { signIn(email: "a@example.com", password: "whatever1") { token } }`,
  };
})();

describe('hostile documents, in production', () => {
  const t = serverForTests({ env: { NODE_ENV: 'production', JWT_SECRET: SECRET, DB_CONNECT_RETRIES: '0' } });

  const post = async (body: Record<string, unknown>) => {
    const res = await fetch(`${t.server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return {
      status: res.status,
      body: (await res.json()) as { data?: unknown; errors?: { message: string; extensions?: { code?: string } }[] },
    };
  };

  // Each is refused by the document limits, which run before validation and measure a document in time linear in
  // its tokens (test/unit/guards.test.ts measures 10^30 copies of a field through fragments without expanding them).
  it.each(Object.entries(HOSTILE))('refuses %s with QUERY_TOO_COMPLEX and 400', async (_name, query) => {
    const result = await post({ query });
    expect(result.status).toBe(400);
    expect(result.body.data ?? null).toBeNull();
    expect(result.body.errors).toHaveLength(1);
    expect(result.body.errors![0]!.extensions?.code).toBe('QUERY_TOO_COMPLEX');
  });

  it('answers /health/live while a flood of hostile documents is checked', async () => {
    const flood = Array.from({ length: 40 }, (_, i) => post({ query: Object.values(HOSTILE)[i % Object.keys(HOSTILE).length]! }));
    const live = await fetch(`${t.server.url}/health/live`);
    expect(live.status).toBe(200);
    const results = await Promise.all(flood);
    expect(results.every((r) => r.status === 400)).toBe(true);
  });

  it('reads GET parameters as Apollo does, so that padding cannot hide a document or its variables', async () => {
    const padding = 'x&'.repeat(1200);
    const get = (search: string) => fetch(`${t.server.url}/graphql?${search}`, { headers: { 'apollo-require-preflight': 'true' } });
    const hostile = await get(
      `${padding}query=${encodeURIComponent(HOSTILE['the same field hundreds of times (quadratic for validation)']!)}`,
    );
    expect(hostile.status).toBe(400);
    expect(((await hostile.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe('QUERY_TOO_COMPLEX');
    const pages = Array.from({ length: 20 }, (_, i) => `a${i}: tasks(first: $f) { edges { node { id } } }`).join(' ');
    const query = encodeURIComponent(`query($f: Int = 1) { ${pages} }`);
    const user = await signUpUser(t.server.url);
    const viaVariables = await fetch(`${t.server.url}/graphql?query=${query}&${padding}variables=${encodeURIComponent('{"f":100}')}`, {
      headers: { 'apollo-require-preflight': 'true', authorization: `Bearer ${user.token}` },
    });
    expect(viaVariables.status).toBe(400);
    expect(((await viaVariables.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe(
      'QUERY_TOO_COMPLEX',
    );
  });

  it('answers malformed persisted-query extensions with BAD_REQUEST, not an internal error', async () => {
    for (const persistedQuery of [
      { version: 1, sha256Hash: 'a'.repeat(64) },
      { version: 2, sha256Hash: 'a'.repeat(64) },
      { sha256Hash: {} },
      'x',
      [],
    ]) {
      const answer = await post({ query: '{ __typename }', extensions: { persistedQuery } });
      expect(answer.status).toBe(400);
      expect(answer.body.errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
    }
  });

  it('runs the cheap operation of a document that holds many, and refuses its costly one', async () => {
    const operations = Array.from({ length: 200 }, (_, i) => `query Q${i} { __typename }`).join('\n');
    const costly = `query Costly { a: tasks(first: 100) { edges { node { ${TASK_FIELDS} } } } b: tasks(first: 100) { edges { node { ${TASK_FIELDS} } } } }`;
    const cheap = await post({ query: `${operations}\n${costly}`, operationName: 'Q7' });
    expect(cheap.status).toBe(200);
    expect(cheap.body.data).toEqual({ __typename: 'Query' });
    const refused = await post({ query: `${operations}\n${costly}`, operationName: 'Costly' });
    expect(refused.body.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COMPLEX');
  });

  it('charges a page by the `first` of its variables, and the largest page when the variable is not a size', async () => {
    const query = `query($n: Int) { a: tasks(first: $n) { edges { node { ${TASK_FIELDS} } } } b: tasks(first: $n) { edges { node { ${TASK_FIELDS} } } } }`;
    const user = await signUpUser(t.server.url);
    expect((await user.api.request(query, { n: 50 })).errors).toBeUndefined();
    expect(await user.api.code(query, { n: 100 })).toBe('QUERY_TOO_COMPLEX');
    const refused = await user.api.request(query, { n: 'lots' });
    expect(refused.status).toBe(400);
  });

  it('refuses introspection in production, and says nothing of field names', async () => {
    const introspection = await post({ query: getIntrospectionQuery() });
    expect(introspection.status).toBe(400);
    expect(introspection.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    const typo = await post({ query: '{ healht { status } }' });
    expect(typo.status).toBe(400);
    expect(typo.body.errors?.[0]?.message).not.toMatch(/did you mean/i);
    expect(JSON.stringify(typo.body)).not.toMatch(/health/);
  });

  it('keeps every limit for persisted queries, which arrive without their text once registered', async () => {
    const client = api(t.server.url);
    const { fragments, top } = fanOut(10, 10, 'Query', 'health { status }');
    const query = `{ ${top} }\n${fragments}`;
    const { createHash } = await import('node:crypto');
    const sha256Hash = createHash('sha256').update(query).digest('hex');
    const res = await fetch(`${t.server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, extensions: { persistedQuery: { version: 1, sha256Hash } } }),
    });
    expect(res.status).toBe(400);
    const byHash = await fetch(`${t.server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ extensions: { persistedQuery: { version: 1, sha256Hash } } }),
    });
    const body = (await byHash.json()) as { errors?: { extensions?: { code?: string } }[] };
    expect(body.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_FOUND');
    expect((await client.request('{ health { status } }')).errors).toBeUndefined();
  });
});

describe('hostile documents, in development', () => {
  const t = serverForTests();

  it('refuses introspection that nests lists to multiply its work', async () => {
    const res = await fetch(`${t.server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __schema { types { fields { type { fields { type { fields { type { name } } } } } } } } }' }),
    });
    expect(res.status).toBe(400);
  });

  it('serves the standard introspection query', async () => {
    expect((await api(t.server.url).request(getIntrospectionQuery())).errors).toBeUndefined();
  });
});
