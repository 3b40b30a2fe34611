// `npm run bench:subscriptions [-- --subscribers 1000 --transport websocket|sse]`: memory of idle subscribers, and
// the delivery latency of a change to one of them while all are open. Each subscriber is its own user on its own
// connection, as devices are. Prints the server's RSS before and with the subscribers, per subscriber, and p50/p99.
import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { createClient as createSseClient } from 'graphql-sse';
import { createClient } from 'graphql-ws';
import pg from 'pg';
import WebSocket from 'ws';
import { benchDatabase, graphql, mb, rssOf, startServerProcess } from './support.js';

const { values } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '1000' },
    transport: { type: 'string', default: 'websocket' },
    changes: { type: 'string', default: '200' },
    'per-connection': { type: 'string', default: '1' },
  },
});
// Subscriptions each user holds on one connection (WebSocket): 1 as devices do; up to SUBSCRIPTIONS_PER_USER.
const perConnection = Number(values['per-connection']);
const count = Number(values.subscribers);
const sse = values.transport === 'sse';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const database = await benchDatabase('bench_subscriptions');
// Every subscriber connects from 127.0.0.1: no cap per address.
const server = await startServerProcess(database.url, {
  BCRYPT_ROUNDS: '4',
  AUTH_RATE_LIMIT: '1000000',
  COST_RATE_LIMIT: '1000000000',
  MAX_STREAMS_PER_IP: '0',
});
const pid = server.child.pid!;
const SIGN_UP = `mutation($input: SignUpInput!) { signUp(input: $input) { token } }`;
const CREATE = `mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateTaskInput!) { updateTask(id: $id, input: $input) { id } }`;
const CHANGES = `subscription { taskChanges { cursor kind taskId at task { id title status priority tags dueDate isOverdue updatedAt } } }`;

const tokens: string[] = [];
for (let i = 0; i < Math.ceil(count / perConnection); i++) {
  const { signUp } = await graphql<{ signUp: { token: string } }>(server.url, SIGN_UP, {
    input: { email: `sub${i}@example.com`, password: 'subscriber-password' },
  });
  tokens.push(signUp.token);
}
const openSubscriptions = async () => {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return Number(new RegExp(`^subscriptions_open\\{transport="${sse ? 'sse' : 'websocket'}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
};
/** After 10 s of quiet (V8's memory reducer collects by then): the RSS, and the heap in use as /metrics says. */
const settle = async () => {
  await sleep(10_000);
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return { rss: rssOf(pid), heap: Number(/^nodejs_heap_size_used_bytes (\d+)/m.exec(text)?.[1] ?? NaN) };
};
const before = await settle();

const arrivals = new Map<number, number>();
let seenByFirst = 0;
const closers: (() => unknown)[] = [];
const clients: ReturnType<typeof createClient>[] = [];
for (let i = 0; i < count; i++) {
  const next = () => {
    if (i === 0) arrivals.set(++seenByFirst, performance.now());
  };
  if (sse) {
    const client = createSseClient({
      url: `${server.url}/graphql/stream`,
      headers: { authorization: `Bearer ${tokens[i]}` },
      retryAttempts: 0,
    });
    const stop = client.subscribe(
      { query: CHANGES },
      { next, error: (error) => process.stderr.write(`subscriber failed: ${JSON.stringify(error)}\n`), complete: () => undefined },
    );
    closers.push(() => {
      stop();
      client.dispose();
    });
  } else {
    const user = Math.floor(i / perConnection);
    if (i % perConnection === 0) {
      const client = createClient({
        url: `${server.url.replace('http', 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${tokens[user]}` },
        retryAttempts: 0,
      });
      clients.push(client);
      closers.push(() => client.dispose());
    }
    clients[user]!.subscribe(
      { query: CHANGES },
      { next, error: (error) => process.stderr.write(`subscriber failed: ${JSON.stringify(error)}\n`), complete: () => undefined },
    );
  }
}
const openedAt = performance.now();
while ((await openSubscriptions()) < count) {
  if (performance.now() - openedAt > 120_000) throw new Error(`only ${await openSubscriptions()} of ${count} subscriptions opened`);
  await sleep(200);
}
const opened = performance.now() - openedAt;
const withSubscribers = await settle();

// One subscriber's user writes; the others stay idle.
const { createTask } = await graphql<{ createTask: { id: string } }>(server.url, CREATE, { input: { title: 'watched' } }, tokens[0]);
await sleep(500);
// Reads of the change log, as pg_stat_statements counts them (the bench cluster loads it).
const admin = new pg.Client({ connectionString: database.url });
await admin.connect();
await admin.query('create extension if not exists pg_stat_statements');
const logReads = async () =>
  Number(
    (
      await admin.query(
        `select coalesce(sum(calls), 0)::int8 as n from pg_stat_statements where dbid = (select oid from pg_database where datname = current_database()) and query like '%from task_changes c %'`,
      )
    ).rows[0].n,
  );
const readsBefore = await logReads();
const sent: number[] = [];
const changes = Number(values.changes);
for (let n = 1; n <= changes; n++) {
  sent.push(performance.now());
  await graphql(server.url, UPDATE, { id: createTask.id, input: { title: `watched ${n}` } }, tokens[0]);
}
await sleep(1000);
const latencies = sent.map((at, n) => (arrivals.get(n + 2) ?? NaN) - at).sort((a, b) => a - b);
const lost = latencies.filter(Number.isNaN).length;
const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]!;
const afterWrites = rssOf(pid);
const reads = (await logReads()) - readsBefore;
await admin.end();

for (const close of closers) close();
await server.stop();
database.stop();

process.stdout.write(
  `transport: ${sse ? 'Server-Sent Events' : 'WebSocket'}, ${count} subscribers (${perConnection} per user and connection), opened in ${(opened / 1000).toFixed(1)} s\n`,
);
const each = (bytes: number) => `${(bytes / count / 1024).toFixed(1)} KB each`;
process.stdout.write(
  `server RSS: idle ${mb(before.rss)}, with the subscribers ${mb(withSubscribers.rss)} (+${mb(withSubscribers.rss - before.rss)}, ${each(withSubscribers.rss - before.rss)}), after ${changes} changes ${mb(afterWrites)}\n`,
);
process.stdout.write(
  `server heap in use: idle ${mb(before.heap)}, with the subscribers ${mb(withSubscribers.heap)} (+${mb(withSubscribers.heap - before.heap)}, ${each(withSubscribers.heap - before.heap)})\n`,
);
process.stdout.write(
  `delivery of ${changes} changes to one of them, from sending the mutation (its own round trip included): p50 ${pct(50).toFixed(1)} ms, p99 ${pct(99).toFixed(1)} ms, missing ${lost}\n`,
);
process.stdout.write(`reads of the change log: ${reads} for ${changes} changes (${(reads / changes).toFixed(2)} per change)\n`);
process.exit(0);
