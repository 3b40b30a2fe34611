// `npm run bench:alloc [-- --scenario C|D]`: what one request of scenario B (a page of 20 tasks with every field and
// the owner), or of C or D as `bench:profile` runs them, allocates in ours, as production runs it: V8's sampling
// heap profiler (including objects already collected), over 8 s of load at 20 connections, by package and by
// function. The figure a young generation pays for: the more each request allocates, the more often the collector
// runs and the more of each request it promotes.
import 'reflect-metadata';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { freePort } from '../src/embedded/embedded.js';
import { temporaryProductionInstall } from '../scripts/production-install.js';
import { benchDatabase, IMAGE_NODE_OPTIONS, loadWith, startNode, toolScenario, userWithTasks } from './support.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '8' }, scenario: { type: 'string', default: 'B' } } });
const { document, tasks } = toolScenario(values.scenario);
const database = await benchDatabase('bench_alloc');
const inspector = await freePort();
const env = { DB_POOL_MAX: '10', AUTH_RATE_LIMIT: '1000000', COST_RATE_LIMIT: '1000000000', NODE_OPTIONS: IMAGE_NODE_OPTIONS };
const server = await startNode(
  [`--inspect=127.0.0.1:${inspector}`, 'dist/src/main.js'],
  await temporaryProductionInstall(),
  database.url,
  env,
);
const token = await userWithTasks(server.url, 'alloc@example.com', tasks);
const load = (seconds: number) => loadWith(server.url, token, document, seconds);
await load(3);

// The DevTools protocol on the server's inspector port.
const [target] = (await (await fetch(`http://127.0.0.1:${inspector}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
const socket = new WebSocket(target!.webSocketDebuggerUrl);
await new Promise((resolve) => socket.once('open', resolve));
const pending = new Map<number, (result: unknown) => void>();
socket.on('message', (message) => {
  const { id, result } = JSON.parse(String(message)) as { id?: number; result?: unknown };
  if (id !== undefined) pending.get(id)?.(result);
});
let nextId = 0;
const send = <T>(method: string, params: object = {}) =>
  new Promise<T>((resolve) => {
    const id = ++nextId;
    pending.set(id, resolve as (result: unknown) => void);
    socket.send(JSON.stringify({ id, method, params }));
  });
await send('HeapProfiler.enable');
await send('HeapProfiler.startSampling', {
  samplingInterval: 4096,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
});
const result = await load(Number(values.seconds));
const { profile } = await send<{ profile: { head: Node } }>('HeapProfiler.stopSampling');
socket.close();
await server.stop();
database.stop();

interface Node {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: Node[];
}
const byPackage = new Map<string, number>();
const byFunction = new Map<string, number>();
let total = 0;
const walk = (node: Node) => {
  const raw = node.callFrame.url;
  const url = raw.includes('node_modules/') ? raw.replace(/^.*node_modules\//, '') : raw.replace(/^.*\/dist\/src\//, 'src/');
  const pkg = url.startsWith('src/')
    ? 'src (ours)'
    : !url || url.startsWith('node:')
      ? '(node, or code compiled at run time)'
      : url.startsWith('@')
        ? url.split('/').slice(0, 2).join('/')
        : url.split('/')[0]!;
  const fn = `${node.callFrame.functionName || '(anonymous)'} ${url}:${node.callFrame.lineNumber + 1}`;
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + node.selfSize);
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + node.selfSize);
  total += node.selfSize;
  for (const child of node.children) walk(child);
};
walk(profile.head);
const requests = result.requests.total;
const kb = (bytes: number) => (bytes / requests / 1024).toFixed(1);
const table = (title: string, rows: Map<string, number>, n: number) =>
  `| KB per request | ${title} |\n| ---: | --- |\n${[...rows]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([key, bytes]) => `| ${kb(bytes)} | ${key} |`)
    .join('\n')}\n`;
process.stdout.write(
  `Scenario ${values.scenario}, 20 connections, ${values.seconds} s: ${requests} requests, ${kb(total)} KB allocated per request (sampled every 4 KB)\n\n`,
);
process.stdout.write(`${table('package', byPackage, 12)}\n${table('function', byFunction, 20)}`);
