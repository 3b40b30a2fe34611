// `npm run bench:scale [-- --others 2000000 --runs 25]`: what a page costs as a user's tasks and the table grow.
// Seeds (in SQL) a user with 1,000 tasks and one with 100,000, measures every ordering (both directions, pages 1
// and 2), every filter and the counts through the real endpoint (median of `runs` requests, pages of 20, timed in
// rounds that take each query in turn), then adds
// about `others` rows of other users and measures again. Prints each query's time, its growth with the table, and
// the power user's ratio to the small user, for the request through the endpoint and for PostgreSQL's own time
// (pg_stat_statements), which HTTP and GraphQL do not blur.
import 'reflect-metadata';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { TASK_PAGE_INDEXES } from '../src/migrations/Migration20261207100000_task_page_indexes.js';
import { seedOtherUsers, seedTasks } from '../test/support/task-volume.js';
import { benchDatabase, graphql, median, startServerProcess } from './support.js';

const { values } = parseArgs({ options: { others: { type: 'string', default: '2000000' }, runs: { type: 'string', default: '25' } } });
const OTHERS = Number(values.others);
const RUNS = Number(values.runs);

const database = await benchDatabase('bench_scale');
const server = await startServerProcess(database.url, { BCRYPT_ROUNDS: '4', AUTH_RATE_LIMIT: '1000000', COST_RATE_LIMIT: '1000000000' });
const db = new pg.Client({ connectionString: database.url });
await db.connect();
await db.query('create extension if not exists pg_stat_statements');

const SIGN_UP = `mutation($input: SignUpInput!) { signUp(input: $input) { token user { id } } }`;
async function user(email: string): Promise<{ id: string; token: string }> {
  const { signUp } = await graphql<{ signUp: { token: string; user: { id: string } } }>(server.url, SIGN_UP, {
    input: { email, password: 'scale-password' },
  });
  return { id: signUp.user.id, token: signUp.token };
}

async function seed(owners: string[], count: number): Promise<void> {
  await seedTasks(db, owners, count);
  await db.query('vacuum analyze tasks');
}

interface Query {
  name: string;
  filter?: Record<string, unknown>;
  orderBy?: { field: string; direction: string };
  page2?: boolean;
  count?: boolean;
}
const PAGE = `query($filter: TaskFilter, $orderBy: TaskOrder, $after: String) {
  tasks(first: 20, filter: $filter, orderBy: $orderBy, after: $after) { edges { node { id title status priority dueDate tags } } pageInfo { endCursor } }
}`;
const COUNT = `query($filter: TaskFilter) { tasks(first: 1, filter: $filter) { totalCount } }`;
const due = {
  dueAfter: new Date(Date.now() - 30 * 86_400_000).toISOString(),
  dueBefore: new Date(Date.now() + 90 * 86_400_000).toISOString(),
};
const QUERIES: Query[] = [
  ...['CREATED_AT', 'UPDATED_AT', 'DUE_DATE', 'PRIORITY', 'TITLE'].flatMap((field) =>
    ['ASC', 'DESC'].flatMap((direction) =>
      [false, true].map((page2) => ({ name: `${field} ${direction}${page2 ? ', page 2' : ''}`, orderBy: { field, direction }, page2 })),
    ),
  ),
  { name: 'status PENDING', filter: { status: ['PENDING'] } },
  { name: 'priority URGENT, page 2', filter: { priority: ['URGENT'] }, page2: true },
  { name: 'overdue', filter: { overdue: true } },
  { name: 'due window by DUE_DATE', filter: due, orderBy: { field: 'DUE_DATE', direction: 'ASC' } },
  { name: 'tagsAny, page 2', filter: { tagsAny: ['tag-3', 'tag-4'] }, page2: true },
  { name: 'tagsAll', filter: { tagsAll: ['tag-3', 'tag-1'] } },
  { name: 'search "report"', filter: { search: 'report' } },
  { name: 'search "report", page 2', filter: { search: 'report' }, page2: true },
  { name: 'totalCount', count: true },
  { name: 'totalCount PENDING', filter: { status: ['PENDING'] }, count: true },
];

interface Measured {
  /** Median time of a request through the endpoint, in ms. */
  ms: number;
  /** PostgreSQL's own time for the statements on tasks, per request, in ms (pg_stat_statements). */
  db: number;
}

/** A query's variables for a user: page 2 starts from page 1's endCursor, which is not timed. */
async function variablesFor(token: string, query: Query): Promise<Record<string, unknown>> {
  const variables: Record<string, unknown> = { filter: query.filter, orderBy: query.orderBy };
  if (query.page2) {
    const first = await graphql<{ tasks: { pageInfo: { endCursor: string | null } } }>(server.url, PAGE, variables, token);
    variables.after = first.tasks.pageInfo.endCursor;
  }
  return variables;
}

/** A query for a user, `RUNS` times in a row: PostgreSQL's time for its statements, and the requests' median. */
async function measure(token: string, query: Query): Promise<Measured> {
  const variables = await variablesFor(token, query);
  const times: number[] = [];
  for (let i = 0; i < RUNS + 3; i++) {
    if (i === 3) await db.query('select pg_stat_statements_reset()');
    const started = performance.now();
    await graphql(server.url, query.count ? COUNT : PAGE, variables, token);
    if (i >= 3) times.push(performance.now() - started);
  }
  const { rows } = await db.query<{ ms: number | null }>(
    `select sum(total_exec_time)::float8 as ms from pg_stat_statements
     where dbid = (select oid from pg_database where datname = current_database()) and query like '%from tasks t%'`,
  );
  return { ms: median(times), db: (rows[0]!.ms ?? 0) / RUNS };
}

const small = await user('small@example.com');
const power = await user('power@example.com');
await seed([small.id], 1_000);
await seed([power.id], 100_000);

const measureAll = async () => {
  // Two rounds first: the server's JIT and PostgreSQL's caches warm on every query.
  for (let round = 0; round < 2; round++)
    for (const query of QUERIES)
      for (const { token } of [small, power])
        await graphql(server.url, query.count ? COUNT : PAGE, { filter: query.filter, orderBy: query.orderBy }, token);
  const result = new Map<string, { small: Measured; power: Measured }>();
  for (const query of QUERIES)
    result.set(query.name, { small: await measure(small.token, query), power: await measure(power.token, query) });
  // The request times again, interleaved: each round times every query once for each user, so that the machine's
  // drift over the run (a quarter within minutes here) falls on every query alike instead of on a few.
  const runs = [...result.keys()].flatMap((name) => [small, power].map((who) => ({ name, who, times: [] as number[] })));
  const variablesOf = new Map<(typeof runs)[number], Record<string, unknown>>();
  for (const run of runs)
    variablesOf.set(
      run,
      await variablesFor(
        run.who.token,
        QUERIES.find((query) => query.name === run.name)!,
      ),
    );
  for (let round = 0; round < RUNS; round++)
    for (const run of runs) {
      const query = QUERIES.find(({ name }) => name === run.name)!;
      const started = performance.now();
      await graphql(server.url, query.count ? COUNT : PAGE, variablesOf.get(run)!, run.who.token);
      run.times.push(performance.now() - started);
    }
  for (const run of runs) result.get(run.name)![run.who === small ? 'small' : 'power'].ms = median(run.times);
  return result;
};
const before = await measureAll();
const rowsBefore = Number((await db.query<{ n: string }>('select count(*) as n from tasks')).rows[0]!.n);

// Other users: a thousand tasks each.
const started = performance.now();
await seedOtherUsers(db, Math.ceil(OTHERS / 1000), 1000);
await db.query('vacuum analyze tasks');
const rowsAfter = Number((await db.query<{ n: string }>('select count(*) as n from tasks')).rows[0]!.n);
process.stdout.write(`seeded ${rowsAfter - rowsBefore} other rows in ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
const after = await measureAll();

// How long each index of the migration takes to build concurrently on this table (what a deploy waits for).
const builds: string[] = [];
for (const [name, definition] of Object.entries(TASK_PAGE_INDEXES)) {
  await db.query(`drop index concurrently if exists "${name}"`);
  const building = performance.now();
  await db.query(`create index concurrently "${name}" ${definition}`);
  builds.push(`| ${name} | ${((performance.now() - building) / 1000).toFixed(1)} s |`);
}

const ms = (n: number) => n.toFixed(1);
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
const lines = [
  `Pages of 20, median of ${RUNS} requests; the table at ${rowsBefore.toLocaleString('en')} rows, then ${rowsAfter.toLocaleString('en')}.`,
  "Each cell: the request through the endpoint in ms / PostgreSQL's time for its statements on tasks in ms.",
  '',
  '| query | 1k user, small table | 1k user, large table | growth (request / database) | 100k user, large table | 100k / 1k (request / database) |',
  '| --- | ---: | ---: | ---: | ---: | ---: |',
  ...QUERIES.map(({ name }) => {
    const [b, a] = [before.get(name)!, after.get(name)!];
    return (
      `| ${name} | ${ms(b.small.ms)} / ${ms(b.small.db)} | ${ms(a.small.ms)} / ${ms(a.small.db)} | ` +
      `${ratio(a.small.ms, b.small.ms)} / ${ratio(a.small.db, b.small.db)} | ${ms(a.power.ms)} / ${ms(a.power.db)} | ` +
      `${ratio(a.power.ms, a.small.ms)} / ${ratio(a.power.db, a.small.db)} |`
    );
  }),
];
process.stdout.write(
  `${lines.join('\n')}\n\n| index, built concurrently on ${rowsAfter.toLocaleString('en')} rows | took |\n| --- | ---: |\n${builds.join('\n')}\n`,
);
await db.end();
await server.stop();
database.stop();
