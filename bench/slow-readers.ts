// `npm run bench:slow-readers [-- --users 3 --subscriptions 20 --edits 300 --aliases 1 --read --cost-limit N]`: what
// signed-in users whose sockets stop reading cost the production server (the image's heap settings). Each opens one
// WebSocket with `--subscriptions` subscriptions of `task { description }` (`--aliases` times over), stops reading
// (unless `--read`), and edits a task `--edits` times, 4 at a time, with descriptions of 10,000 emoji. Meanwhile one
// well-behaved user edits its own task every 100 ms and reads its feed. Prints the server's peak RSS, the bytes it
// held for slow readers (/metrics), whether it survived, what the users received, and how late the well-behaved
// user's events were. `--cost-limit` is COST_RATE_LIMIT (default: high enough never to refuse).
import 'reflect-metadata';
import type { Socket } from 'node:net';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { benchDatabase, graphql, mb, rssOf, startServerProcess } from './support.js';

const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '3' },
    subscriptions: { type: 'string', default: '20' },
    edits: { type: 'string', default: '300' },
    aliases: { type: 'string', default: '1' },
    read: { type: 'boolean', default: false },
    'cost-limit': { type: 'string', default: '1000000000' },
  },
});
const users = Number(values.users);
const perUser = Number(values.subscriptions);
const edits = Number(values.edits);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const SIGN_UP = `mutation($input: SignUpInput!) { signUp(input: $input) { token } }`;
const CREATE = `mutation($input: CreateTaskInput!) { createTask(input: $input) { id } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateTaskInput!) { updateTask(id: $id, input: $input) { id } }`;
const DESCRIPTIONS = `subscription { taskChanges { cursor ${Array.from({ length: Number(values.aliases) }, (_, i) => `d${i}: task { description }`).join(' ')} } }`;
const EMOJI = '😀'.repeat(9_990);

const database = await benchDatabase('bench_slow_readers');
const server = await startServerProcess(database.url, {
  BCRYPT_ROUNDS: '4',
  AUTH_RATE_LIMIT: '1000000',
  COST_RATE_LIMIT: values['cost-limit'],
});
const pid = server.child.pid!;
let exited: number | null = null;
server.child.once('exit', (code) => (exited = code ?? -1));

const metric = async (name: string) => {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
};

/** A signed-in user with one task and a WebSocket carrying `count` subscriptions; `onNext` sees every event. */
async function user(i: number, count: number, onNext: () => void = () => undefined) {
  const { signUp } = await graphql<{ signUp: { token: string } }>(server.url, SIGN_UP, {
    input: { email: `slow${i}@example.com`, password: 'slow-reader-password' },
  });
  const { createTask } = await graphql<{ createTask: { id: string } }>(server.url, CREATE, { input: { title: `task ${i}` } }, signUp.token);
  const socket = new WebSocket(`${server.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  socket.on('error', () => undefined);
  const acked = new Promise((resolve) =>
    socket.on('message', (data: Buffer) => {
      received += data.length;
      if (data.length < 100 && JSON.parse(String(data)).type === 'connection_ack') resolve(undefined);
      else onNext();
    }),
  );
  socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${signUp.token}` } }));
  await acked;
  for (let n = 0; n < count; n++) socket.send(JSON.stringify({ id: String(n), type: 'subscribe', payload: { query: DESCRIPTIONS } }));
  return { token: signUp.token, taskId: createTask.id, socket };
}

let received = 0;
const rssBefore = rssOf(pid);
const slow = await Promise.all(Array.from({ length: users }, (_, i) => user(i, perUser)));
let sentAt = 0;
const lateness: number[] = [];
const reader = await user(users, 1, () => sentAt && lateness.push(performance.now() - sentAt));
while ((await metric('subscriptions_open')) < users * perUser + 1) await sleep(100);
if (!values.read) for (const { socket } of slow) (socket as unknown as { _socket: Socket })._socket.pause();

let peakRss = rssBefore;
let peakHeld = 0;
const sampler = setInterval(() => {
  if (exited === null) peakRss = Math.max(peakRss, rssOf(pid));
  void metric('subscription_buffered_bytes').then(
    (held) => (peakHeld = Math.max(peakHeld, held || 0)),
    () => undefined,
  );
}, 100);
let writing = true;
const wellBehaved = (async () => {
  for (let n = 0; writing && exited === null; n++) {
    sentAt = performance.now();
    await graphql(server.url, UPDATE, { id: reader.taskId, input: { title: `mine ${n}` } }, reader.token).catch(() => undefined);
    await sleep(100);
  }
})();
const started = performance.now();
await Promise.all(
  slow.map(async ({ token, taskId }) => {
    for (let n = 0; n < edits && exited === null; n += 4) {
      await Promise.all(
        Array.from({ length: 4 }, (_, j) =>
          graphql(server.url, UPDATE, { id: taskId, input: { description: `${n + j} ${EMOJI}` } }, token).catch(() => undefined),
        ),
      );
    }
  }),
);
const seconds = (performance.now() - started) / 1000;
writing = false;
await wellBehaved;
await sleep(1000);
clearInterval(sampler);

const alive = exited === null;
const cuts = alive ? await metric('subscription_buffer_cuts') : NaN;
const open = alive ? await metric('subscriptions_open') : NaN;
const sorted = [...lateness].sort((a, b) => a - b);
process.stdout.write(
  `${users} users x ${perUser} subscriptions ${values.read ? 'reading' : 'not reading'} (${values.aliases} aliases), ${edits} edits each of 40 KB descriptions, in ${seconds.toFixed(1)} s; clients received ${mb(received)}\n`,
);
process.stdout.write(`server: ${alive ? 'alive' : `exited with ${exited}`}; RSS ${mb(rssBefore)} before, peak ${mb(peakRss)}\n`);
process.stdout.write(
  `held for slow readers: peak ${mb(peakHeld)} (/metrics subscription_buffered_bytes); cuts ${cuts}; subscriptions still open ${open}\n`,
);
process.stdout.write(
  `well-behaved user's events after its mutation was sent: ${sorted.length} events, p50 ${(sorted[Math.floor(sorted.length / 2)] ?? NaN).toFixed(0)} ms, max ${(sorted.at(-1) ?? NaN).toFixed(0)} ms\n`,
);
for (const { socket } of [...slow, reader]) socket.terminate();
if (alive) await server.stop();
database.stop();
process.exit(0);
