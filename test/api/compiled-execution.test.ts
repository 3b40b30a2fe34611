import {
  GraphQLEnumType,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  parse,
  type GraphQLResolveInfo,
  type OperationDefinitionNode,
} from 'graphql';
import { COMPILE_AFTER, compiledRunner, maskedSource } from '../../src/graphql/compiled-executor.js';

// The server loads graphql-jit on its first query; these runners are given it.
const jit = await import('graphql-jit');

/** What a runner answers for `source` on each of its first `times` runs (null: left to Apollo). */
async function runsOf(run: ReturnType<typeof compiledRunner>, source: string, times: number, variables: Record<string, unknown> = {}) {
  const document = parse(source);
  const operation = document.definitions[0] as OperationDefinitionNode;
  const operationName = operation.name?.value ?? null;
  const results = [];
  for (let n = 1; n <= times; n++)
    results.push(await run({ document, operation, operationName, queryHash: source, variables, context: {} }));
  return results;
}
import { signUpUser } from '../support/api.js';
import { serverForTests } from '../support/server.js';
import { createTask, TASK_FIELDS } from '../support/tasks.js';

type User = Awaited<ReturnType<typeof signUpUser>>;

// A query's first runs are graphql-js's; from its COMPILE_AFTER-th it runs compiled by graphql-jit
// (src/graphql/compiled-executor.ts). Clients must not be able to tell: every answer below is asked for on both
// sides of that run and must come back byte for byte the same, with the same status.
describe('compiled execution', () => {
  const t = serverForTests();
  let user: User;

  beforeAll(async () => {
    user = await signUpUser(t.server.url);
    await createTask(user.api, {
      title: 'overdue',
      dueDate: '2001-01-01T00:00:00.000Z',
      tags: ['b', 'a'],
      description: 'with "quotes" and \\ and \u2028',
    });
    await createTask(user.api, { title: 'done', status: 'COMPLETED', priority: 'HIGH' });
    await createTask(user.api, { title: 'plain' });
  });

  const post = async (query: string, variables?: Record<string, unknown>) => {
    const res = await fetch(`${t.server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.token}` },
      body: JSON.stringify({ query, variables }),
    });
    return { status: res.status, body: await res.text() };
  };
  const sameEveryTime = async (query: string, variables?: Record<string, unknown>) => {
    const first = await post(query, variables);
    for (let run = 1; run < COMPILE_AFTER + 2; run++) expect(await post(query, variables)).toEqual(first);
    return {
      status: first.status,
      body: JSON.parse(first.body) as {
        data?: unknown;
        errors?: { message: string; path?: unknown[]; locations?: unknown[]; extensions: { code: string } }[];
      },
    };
  };

  it('answers a page with every field, aliases, fragments, @skip and @include as graphql-js does', async () => {
    const { status, body } = await sameEveryTime(
      `query Everything($skip: Boolean!, $first: Int) {
        page: tasks(first: $first, orderBy: { field: TITLE, direction: ASC }) {
          totalCount pageInfo { hasNextPage endCursor }
          edges { cursor node { ...Fields again: title skipped: id @skip(if: $skip) kept: id @include(if: $skip) } }
        }
        me { id email }
      }
      fragment Fields on Task { ${TASK_FIELDS} }`,
      { skip: true, first: 2 },
    );
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    const page = (body.data as { page: { totalCount: number; edges: { node: Record<string, unknown> }[] } }).page;
    expect(page.totalCount).toBe(3);
    expect(page.edges.map((edge) => edge.node.title)).toEqual(['done', 'overdue']);
    expect(page.edges[1]!.node).toMatchObject({
      isOverdue: true,
      tags: expect.arrayContaining(['a', 'b']),
      again: 'overdue',
      kept: expect.any(String),
    });
    expect(page.edges[1]!.node).not.toHaveProperty('skipped');
  });

  it('refuses a bad variable with BAD_USER_INPUT and status 400', async () => {
    const { status, body } = await sameEveryTime('query Bad($first: Int) { tasks(first: $first) { totalCount } }', { first: 'many' });
    expect(status).toBe(400);
    expect(body.errors?.map((error) => error.extensions.code)).toEqual(['BAD_USER_INPUT']);
  });

  it('reports a resolver’s error with its code, path and locations', async () => {
    const { status, body } = await sameEveryTime('query Cursor { tasks(after: "not a cursor") { totalCount } }');
    expect(status).toBe(200);
    expect(body.errors).toEqual([
      expect.objectContaining({
        path: ['tasks'],
        locations: [{ line: 1, column: 16 }],
        extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }),
      }),
    ]);
  });

  it('runs the fields of a mutation one after the other, on every run', async () => {
    const document =
      'mutation Two($n: String!) { first: createTask(input: { title: $n, tags: ["1"] }) { title } second: createTask(input: { title: $n, tags: ["2"] }) { title } }';
    for (let run = 0; run < COMPILE_AFTER + 2; run++) {
      const body = JSON.parse((await post(document, { n: `serial ${run}` })).body) as { data: unknown; errors?: unknown };
      expect(body).toEqual({ data: { first: { title: `serial ${run}` }, second: { title: `serial ${run}` } } });
    }
    // In the change log's order (the order the writes committed): each run's first field, then its second.
    const { rows } = await t.db.query<{ task: { title: string; tags: string[] } }>(
      `select task from task_changes where task->>'title' like 'serial %' order by xid, id`,
    );
    expect(rows.map(({ task }) => `${task.title}/${task.tags[0]}`)).toEqual(
      Array.from({ length: COMPILE_AFTER + 2 }, (_, run) => [`serial ${run}/1`, `serial ${run}/2`]).flat(),
    );
  });

  it('reports an error in a mutation the same way, and writes nothing', async () => {
    const { body } = await sameEveryTime(
      'mutation Missing { updateTask(id: "00000000-0000-4000-8000-000000000000", input: { title: "x" }) { id } }',
    );
    expect(body.errors?.map((error) => [error.extensions.code, error.path])).toEqual([['NOT_FOUND', ['updateTask']]]);
    expect((await t.db.query(`select 1 from tasks where title = 'x'`)).rowCount).toBe(0);
  });
});

describe('what is compiled', () => {
  it('is a query from its COMPILE_AFTER-th run, never a mutation', async () => {
    // graphql-js gives a resolver the parent type in `info.path`, graphql-jit's compiled code does not.
    const runner = {
      type: GraphQLString,
      resolve: (_: unknown, __: unknown, ___: unknown, info: GraphQLResolveInfo) => (info.path.typename ? 'graphql-js' : 'compiled'),
    };
    const schema = new GraphQLSchema({
      query: new GraphQLObjectType({ name: 'Query', fields: { runner } }),
      mutation: new GraphQLObjectType({ name: 'Mutation', fields: { runner } }),
    });
    const run = compiledRunner(schema, { jit });
    const runs = async (source: string) =>
      (await runsOf(run, source, COMPILE_AFTER + 1)).map((result) => (result === null ? 'Apollo' : result.data?.runner));
    // The runs before are left to Apollo's execution (graphql-js).
    expect(await runs('query R { runner }')).toEqual([...Array<string>(COMPILE_AFTER - 1).fill('Apollo'), 'compiled', 'compiled']);
    // graphql-jit's code for a mutation kept each request alive across V8's young collections (see compiledRunner).
    expect(await runs('mutation R { runner }')).toEqual(Array<string>(COMPILE_AFTER + 1).fill('Apollo'));
  });

  it('leaves a run whose answer carries an error, or whose variables graphql-js refuses, to Apollo', async () => {
    const fields = {
      fails: {
        type: GraphQLString,
        resolve: () => {
          throw new Error('no');
        },
      },
      echo: { type: GraphQLString, args: { n: { type: GraphQLString } }, resolve: (_: unknown, { n }: { n: string }) => n },
    };
    const run = compiledRunner(new GraphQLSchema({ query: new GraphQLObjectType({ name: 'Query', fields }) }), { jit });
    const twice = async (source: string, variables: Record<string, unknown>) =>
      (await runsOf(run, source, COMPILE_AFTER + 1, variables)).slice(-2);
    expect(await twice('{ fails }', {})).toEqual([null, null]);
    expect(await twice('query ($n: String) { echo(n: $n) }', { n: 5 })).toEqual([null, null]);
    expect(await twice('query ($n: String) { echo(n: $n) }', { n: 'x' })).toEqual([{ data: { echo: 'x' } }, { data: { echo: 'x' } }]);
  });
});

describe('compiled leaves', () => {
  it('are still serialised where an enum’s values are not its names', async () => {
    const Mood = new GraphQLEnumType({ name: 'Mood', values: { HAPPY: { value: 1 } } });
    const fields = { mood: { type: Mood, resolve: () => 1 }, name: { type: GraphQLString, resolve: () => 'x' } };
    const run = compiledRunner(new GraphQLSchema({ query: new GraphQLObjectType({ name: 'Query', fields }) }), { jit });
    const results = await runsOf(run, 'query Q { mood name }', COMPILE_AFTER);
    expect(JSON.stringify(results.at(-1))).toBe('{"data":{"mood":"HAPPY","name":"x"}}');
  });
});

describe('the compiled run’s trace of a document', () => {
  it('keeps the tokens and masks every literal and comment', () => {
    expect(
      maskedSource(
        parse(
          'query Q($a: Int = 5) { tasks(first: 10, filter: { search: "secret" }) { edges { node { id } } } } # secret\n{ x(y: """secret""", z: 1.5) }',
        ),
      ),
    ).toBe('query Q ( $ a : Int = * ) { tasks ( first : * filter : { search : * } ) { edges { node { id } } } } { x ( y : * z : * ) }');
  });
});
