// `npm run bench:profile [-- --scenario C|D]`: scenario B (a page of 20 tasks with every field and the owner), C (a
// filtered page of 100 tasks with its count) or D (createTask), against our server as production runs it
// (`node dist/src/main.js` from a production install) under --cpu-prof, then where the time went: by package and
// by function (self time).
import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../src/config/app-version.js';
import { benchDatabase, IMAGE_NODE_OPTIONS, loadWith, startNode, toolScenario, userWithTasks } from './support.js';
import { temporaryProductionInstall } from '../scripts/production-install.js';

const { scenario } = parseArgs({ options: { scenario: { type: 'string', default: 'B' } } }).values;
const { document, tasks } = toolScenario(scenario);
const database = await benchDatabase('bench_profile');
const dir = mkdtempSync(join(tmpdir(), 'todo-profile-'));
const install = await temporaryProductionInstall();
const env = { NODE_OPTIONS: IMAGE_NODE_OPTIONS, AUTH_RATE_LIMIT: '1000000', COST_RATE_LIMIT: '1000000000' };
const server = await startNode(['--cpu-prof', `--cpu-prof-dir=${dir}`, 'dist/src/main.js'], install, database.url, env);
const token = await userWithTasks(server.url, 'profile@example.com', tasks);
const result = await loadWith(server.url, token, document, 10);
// The profile is written as the server exits.
await server.stop();
database.stop();

interface Profile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}
// The main thread's profile is the largest; the loader thread's is the other.
const files = readdirSync(dir).map((f) => join(dir, f));
const main = files.map((f) => [f, readFileSync(f, 'utf8')] as const).sort((a, b) => b[1].length - a[1].length)[0]!;
const profile = JSON.parse(main[1]) as Profile;
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const byPackage = new Map<string, number>();
const byFunction = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  const { callFrame } = nodes.get(id)!;
  if (callFrame.functionName === '(idle)') return;
  total += dt;
  const pkg =
    /node_modules\/((@[^/]+\/)?[^/]+)/.exec(callFrame.url)?.[1] ??
    (callFrame.url.includes('/src/') ? 'src (ours)' : callFrame.url.split(':')[0] || callFrame.functionName);
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + dt);
  const fn = `${callFrame.functionName || '(anonymous)'} ${callFrame.url.replace(`file://${install}/`, '').replace(`file://${PROJECT_ROOT}/`, '')}:${callFrame.lineNumber + 1}`;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + dt);
});
const top = (map: Map<string, number>, n: number) =>
  [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `| ${((v / total) * 100).toFixed(1)}% | ${k} |`)
    .join('\n');
process.stdout.write(
  `Scenario ${scenario}, 20 connections, 10 s: ${result.requests.average.toFixed(0)} req/s, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms; busy CPU ${(total / 1e6).toFixed(1)} s (profile: ${main[0]})\n\n` +
    `| self time | package |\n| ---: | --- |\n${top(byPackage, 15)}\n\n| self time | function |\n| ---: | --- |\n${top(byFunction, 30)}\n`,
);
