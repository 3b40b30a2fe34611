// `npm run bench:load [-- --duration 60 --connections 200]`: 200 clients mixing reads and writes against the
// server in production mode. Prints throughput, latency, failed requests, peak connections against
// DB_POOL_MAX and the server's memory over the run.
import 'reflect-metadata';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { benchDatabase, connectionsTo, graphql, IMAGE_NODE_OPTIONS, mb, rssOf, startServerProcess } from './support.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '60' },
    connections: { type: 'string', default: '200' },
    'pool-max': { type: 'string', default: '10' },
    users: { type: 'string', default: '50' },
    // V8 flags for ours, to try heap settings before the image ships them; by default the image's own.
    'node-options': { type: 'string', default: IMAGE_NODE_OPTIONS },
  },
});
const duration = Number(values.duration);
const connections = Number(values.connections);
const poolMax = Number(values['pool-max']);

const database = await benchDatabase('bench_load');
const server = await startServerProcess(
  database.url,
  {
    DB_POOL_MAX: String(poolMax),
    BCRYPT_ROUNDS: '4',
    AUTH_RATE_LIMIT: '1000000',
    COST_RATE_LIMIT: '1000000000',
    NODE_OPTIONS: values['node-options'],
  },
  0,
);
const pid = server.child.pid!;

const SIGN_UP = `mutation($input: SignUpInput!) { signUp(input: $input) { token } }`;
const CREATE = `mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }`;
const users: { token: string; taskIds: string[] }[] = [];
for (let i = 0; i < Number(values.users); i++) {
  const { signUp } = await graphql<{ signUp: { token: string } }>(server.url, SIGN_UP, {
    input: { email: `load${i}@example.com`, password: 'load-test-password' },
  });
  const taskIds: string[] = [];
  for (let t = 0; t < 10; t++) {
    const { createTask } = await graphql<{ createTask: { id: string } }>(
      server.url,
      CREATE,
      { input: { title: `seed ${t}`, tags: [`t${t % 4}`] } },
      signUp.token,
    );
    taskIds.push(createTask.id);
  }
  users.push({ token: signUp.token, taskIds });
}

const OPERATIONS = [
  {
    weight: 4,
    query: `query List { tasks(first: 20) { totalCount edges { node { id title status tags dueDate isOverdue owner { email } } } } }`,
    variables: () => ({}),
  },
  {
    weight: 2,
    query: `query Filtered($tags: [String!]) { tasks(first: 50, filter: { tagsAny: $tags, status: [PENDING, IN_PROGRESS] }) { edges { node { id } } } }`,
    variables: (n: number) => ({ tags: [`t${n % 4}`] }),
  },
  {
    weight: 2,
    query: `mutation Create($input: CreateTaskInput!) { createTask(input: $input) { id } }`,
    variables: (n: number) => ({ input: { title: `load ${n}`, tags: [`t${n % 4}`] } }),
  },
  {
    weight: 1,
    query: `mutation Update($id: ID!, $input: UpdateTaskInput!) { updateTask(id: $id, input: $input) { id } }`,
    variables: (n: number, ids: string[]) => ({ id: ids[n % ids.length], input: { priority: ['LOW', 'MEDIUM', 'HIGH'][n % 3] } }),
  },
  { weight: 1, query: `query Health { health { status } }`, variables: () => ({}) },
];
const schedule = OPERATIONS.flatMap((op) => Array.from({ length: op.weight }, () => op));

let counter = 0;
let graphqlErrors = 0;
const admin = new pg.Client({ connectionString: database.admin });
await admin.connect();
let peakConnections = 0;
let peakRss = 0;
const rssSamples: number[] = [];
const sampler = setInterval(async () => {
  try {
    peakConnections = Math.max(peakConnections, await connectionsTo(admin, 'bench_load'));
    const rss = rssOf(pid);
    peakRss = Math.max(peakRss, rss);
    rssSamples.push(rss);
  } catch {
    // sampling is best effort
  }
}, 250);

const result = await autocannon({
  url: `${server.url}/graphql`,
  connections,
  duration,
  requests: [
    {
      method: 'POST',
      setupRequest: (request) => {
        const n = counter++;
        const user = users[n % users.length]!;
        const op = schedule[n % schedule.length]!;
        return {
          ...request,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${user.token}` },
          body: JSON.stringify({ query: op.query, variables: op.variables(n, user.taskIds) }),
        };
      },
      onResponse: (status, body) => {
        if (status === 200 && body.includes('"errors"')) graphqlErrors++;
      },
    },
  ],
});
clearInterval(sampler);
await admin.end();
await server.stop();
database.stop();

const failed = result.errors + result.timeouts + result.non2xx + graphqlErrors;
const half = rssSamples[Math.floor(rssSamples.length / 2)] ?? 0;
const end = rssSamples.at(-1) ?? 0;
const rows = [
  ['duration', `${duration} s, ${connections} connections`],
  ['requests', String(result.requests.total)],
  ['throughput', `${result.requests.average.toFixed(0)} req/s`],
  ['latency p50 / p99', `${result.latency.p50} ms / ${result.latency.p99} ms`],
  [
    'failed requests',
    `${failed} (errors ${result.errors}, timeouts ${result.timeouts}, non-2xx ${result.non2xx}, GraphQL errors ${graphqlErrors})`,
  ],
  ['peak connections', `${peakConnections} (DB_POOL_MAX ${poolMax})`],
  ['peak RSS', mb(peakRss)],
  ['RSS at half time / at the end', `${mb(half)} / ${mb(end)}`],
];
process.stdout.write(
  `RSS every 2 s (MB): ${rssSamples
    .filter((_, i) => i % 8 === 0)
    .map((r) => (r / 1048576).toFixed(0))
    .join(' ')}\n`,
);
process.stdout.write(`\n| measure | value |\n| --- | --- |\n${rows.map(([k, v]) => `| ${k} | ${v} |`).join('\n')}\n`);
process.exitCode = failed === 0 && peakConnections <= poolMax ? 0 : 1;
