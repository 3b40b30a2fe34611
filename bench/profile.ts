// `npm run bench:profile [-- --scenario D]`: scenario B (a page of 20 tasks with every field and the owner), or D
// (createTask), against our server as production runs it (`node dist/src/main.js` from a production install) under
// --cpu-prof, then where the time went: by package and by function (self time).
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { PROJECT_ROOT } from '../src/config/app-version.js';
import { freePort } from '../src/db/embedded.js';
import { benchDatabase, graphql, IMAGE_NODE_OPTIONS, waitUntilReady } from './support.js';
import { temporaryProductionInstall } from '../scripts/production-install.js';

const { scenario } = parseArgs({ options: { scenario: { type: 'string', default: 'B' } } }).values;
if (scenario !== 'B' && scenario !== 'D') throw new Error('--scenario is B or D');
const FIELDS = 'id title description status priority tags dueDate completedAt isOverdue createdAt updatedAt owner { id email }';
const database = await benchDatabase('bench_profile');
const port = await freePort();
const dir = mkdtempSync(join(tmpdir(), 'todo-profile-'));
const install = await temporaryProductionInstall();
const child = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, 'dist/src/main.js'], {
  cwd: install,
  env: { ...process.env, NODE_OPTIONS: IMAGE_NODE_OPTIONS, NODE_ENV: 'production', DATABASE_URL: database.url, JWT_SECRET: randomBytes(24).toString('hex'), LOG_LEVEL: 'warn', PORT: String(port), AUTH_RATE_LIMIT: '1000000', COST_RATE_LIMIT: '1000000000' },
  stdio: 'ignore',
});
const url = `http://127.0.0.1:${port}`;
await waitUntilReady(`${url}/health/ready`, child);
const { signUp } = await graphql<{ signUp: { token: string } }>(url, 'mutation($input: SignUpInput!) { signUp(input: $input) { token } }', {
  input: { email: 'profile@example.com', password: 'profile-password' },
});
for (let i = 0; i < 40; i++) {
  await graphql(url, 'mutation($t: String!) { createTask(input: { title: $t, tags: ["a", "b"], dueDate: "2030-01-01T00:00:00Z" }) { id } }', { t: `t${i}` }, signUp.token);
}
const result = await autocannon({
  url: `${url}/graphql`,
  connections: 20,
  duration: 10,
  method: 'POST',
  headers: { 'content-type': 'application/json', authorization: `Bearer ${signUp.token}` },
  body: JSON.stringify({
    query: scenario === 'B' ? `query Page { tasks(first: 20) { edges { node { ${FIELDS} } } } }` : 'mutation Create { createTask(input: { title: "profiled" }) { id title status } }',
  }),
});
child.kill('SIGTERM');
await new Promise((resolve) => child.once('exit', resolve));
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
  const pkg = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(callFrame.url)?.[1] ?? (callFrame.url.includes('/src/') ? 'src (ours)' : callFrame.url.split(':')[0] || callFrame.functionName);
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + dt);
  const fn = `${callFrame.functionName || '(anonymous)'} ${callFrame.url.replace(`file://${install}/`, '').replace(`file://${PROJECT_ROOT}/`, '')}:${callFrame.lineNumber + 1}`;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + dt);
});
const top = (map: Map<string, number>, n: number) =>
  [...map].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `| ${((v / total) * 100).toFixed(1)}% | ${k} |`).join('\n');
process.stdout.write(
  `Scenario ${scenario}, 20 connections, 10 s: ${result.requests.average.toFixed(0)} req/s, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms; busy CPU ${(total / 1e6).toFixed(1)} s (profile: ${main[0]})\n\n` +
    `| self time | package |\n| ---: | --- |\n${top(byPackage, 15)}\n\n| self time | function |\n| ---: | --- |\n${top(byFunction, 30)}\n`,
);
