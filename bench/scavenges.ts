// `npm run bench:scavenges [-- --scenario C|D] [--connections 50]`: what of each request outlives V8's young
// generation in ours, as production runs it (the image's heap settings): `--trace-gc-nvp` over 8 s of scenario B
// (or C, D as `bench:profile` runs them) at one connection by default. At one connection a request is over long
// before the next scavenge, so what survives one is held by something else, and is promoted at the next: the
// old generation then fills, full collections follow, and their marking takes the core (docs/performance.md,
// "What outlives a request"). For comparison, Express answering `/health/live` leaves ~10 KB per scavenge.
import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { temporaryProductionInstall } from '../scripts/production-install.js';
import { benchDatabase, IMAGE_NODE_OPTIONS, loadWith, median, startNode, toolScenario, userWithTasks } from './support.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    scenario: { type: 'string', default: 'B' },
    connections: { type: 'string', default: '1' },
  },
});
const { document, tasks } = toolScenario(values.scenario);
const database = await benchDatabase('bench_scavenges');
const env = { DB_POOL_MAX: '10', AUTH_RATE_LIMIT: '1000000', COST_RATE_LIMIT: '1000000000', NODE_OPTIONS: IMAGE_NODE_OPTIONS };
const server = await startNode(['--trace-gc-nvp', 'dist/src/main.js'], await temporaryProductionInstall(), database.url, env, undefined, {
  output: 'pipe',
});
let trace = '';
server.child.stdout!.on('data', (chunk: Buffer) => (trace += chunk.toString()));
const token = await userWithTasks(server.url, 'scavenges@example.com', tasks);
const load = (seconds: number) => loadWith(server.url, token, document, seconds, Number(values.connections));
await load(3);
const from = trace.length;
const result = await load(Number(values.seconds));
const window = trace.slice(from);
await server.stop();
database.stop();

/** The collections V8 reported during the measured load, as name=value pairs. */
const collections = window
  .split('\n')
  .filter((line) => line.includes(' gc='))
  .map((line) => Object.fromEntries(line.split(' ').flatMap((pair) => (pair.includes('=') ? [pair.split('=') as [string, string]] : []))));
const scavenges = collections.filter((gc) => gc.gc === 's');
const requests = result.requests.total;
const promoted = collections.reduce((sum, gc) => sum + Number(gc.promoted ?? 0), 0);
process.stdout.write(
  [
    `Scenario ${values.scenario}, ${values.connections} connection(s), ${values.seconds} s: ${requests} requests (${Math.round(result.requests.average)}/s), ${result.errors + result.non2xx} failed`,
    `scavenges: ${scavenges.length}, median pause ${median(scavenges.map((gc) => Number(gc.pause))).toFixed(1)} ms, median surviving ${(median(scavenges.map((gc) => Number(gc.new_space_survived))) / 2 ** 20).toFixed(2)} MB`,
    `promoted to the old generation: ${(promoted / requests / 1024).toFixed(2)} KB per request; full collections: ${collections.length - scavenges.length}`,
  ].join('\n') + '\n',
);
