// `npm run bench [-- --quick]`: our server against a lean graphql-js + pg baseline, a bare node:http + pg floor
// and, on the page of tasks, PostGraphile 5 (the peer a team would otherwise pick), on the same data, in the same
// run. Prints and writes bench/results/latest.md and ratios.svg (per run, not committed; bench/results/baseline.md is
// the committed reference).
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { PROJECT_ROOT } from '../src/config/app-version.js';
import {
  benchDatabase,
  graphql,
  hasTaskset,
  mb,
  median,
  PAGE_QUERY,
  rssOf,
  startScript,
  startServerProcess,
  type ServerProcess,
} from './support.js';
import { checkPeerPage, ensurePeerInstalled, PEER_PAGE_QUERY, peerVariables, preparePeerDatabase, startPeer } from './peer.js';

const { values } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, connections: { type: 'string', default: '50' }, only: { type: 'string' } },
});
const QUICK = values.quick;
// Five short rounds rather than three long ones: this machine's speed drifts by a quarter within minutes, and a
// median of five per-round ratios (each of two servers measured seconds apart) moves less with it than one of three.
const ROUNDS = QUICK ? 1 : 5;
const WARMUP_S = QUICK ? 1 : 2;
const MEASURE_S = QUICK ? 3 : 8;
const CONNECTIONS = Number(values.connections);
const TASKS = 10_000;
const SECRET = randomBytes(24).toString('hex');

// The load generator on core 0, the servers on core 1, where taskset is there.
if (hasTaskset()) spawnSync('taskset', ['-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });

type Kind = 'ours' | 'lean' | 'floor' | 'peer';
interface Scenario {
  id: string;
  title: string;
  operationName: string;
  query: Record<'ours' | 'lean', string>;
  variables: (n: number) => Record<string, unknown>;
  check: (data: Record<string, unknown>) => boolean;
  /** The same work in the peer's own schema, where there is an equivalent. */
  peer?: { query: string; variables: () => Record<string, unknown>; check: (data: Record<string, unknown>) => boolean };
}

type Page = { tasks: { edges: { node: Record<string, unknown> }[]; totalCount?: number } };
const ALL_SCENARIOS: Scenario[] = [
  {
    id: 'A',
    title: '{ health { status } }',
    operationName: 'Health',
    query: { ours: 'query Health { health { status } }', lean: 'query Health { health { status } }' },
    variables: () => ({}),
    check: (data) => (data as { health: { status: string } }).health.status === 'OK',
  },
  {
    id: 'B',
    title: 'tasks(first: 20), every field and owner',
    operationName: 'Page',
    query: { ours: PAGE_QUERY, lean: PAGE_QUERY },
    variables: () => ({}),
    check: (data) => {
      const edges = (data as Page).tasks.edges;
      return (
        edges.length === 20 &&
        edges.every(({ node }) => typeof node.id === 'string' && typeof (node.owner as { email?: string })?.email === 'string')
      );
    },
    peer: { query: PEER_PAGE_QUERY, variables: () => peerVariables(owner()), check: checkPeerPage },
  },
  {
    id: 'C',
    title: 'tasks(first: 100, filter: { tagsAny, status }) with totalCount',
    operationName: 'Filtered',
    query: {
      ours: 'query Filtered($tagsAny: [String!], $status: [TaskStatus!]) { tasks(first: 100, filter: { tagsAny: $tagsAny, status: $status }) { totalCount edges { node { id title status tags } } } }',
      lean: 'query Filtered($tagsAny: [String!], $status: [String!]) { tasks(first: 100, filter: { tagsAny: $tagsAny, status: $status }) { totalCount edges { node { id title status tags } } } }',
    },
    variables: () => ({ tagsAny: ['tag-1', 'tag-2'], status: ['PENDING', 'IN_PROGRESS'] }),
    check: (data) => {
      const { edges, totalCount } = (data as Page).tasks;
      return edges.length === 100 && typeof totalCount === 'number' && totalCount >= 100;
    },
  },
  {
    id: 'D',
    title: 'createTask with a fresh title',
    operationName: 'Create',
    query: {
      ours: 'mutation Create($title: String!) { createTask(input: { title: $title }) { id title status } }',
      lean: 'mutation Create($title: String!) { createTask(input: { title: $title }) { id title status } }',
    },
    variables: (n) => ({ title: `bench ${n} ${randomBytes(3).toString('hex')}` }),
    check: (data) => typeof (data as { createTask: { id?: string } }).createTask?.id === 'string',
  },
];

/** `--only B,C` runs some scenarios, for a quick look while working on one. */
const SCENARIOS = values.only ? ALL_SCENARIOS.filter((s) => values.only!.split(',').includes(s.id)) : ALL_SCENARIOS;

interface Measurement {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  invalid: number;
  sqlPerRequest: number;
  peakRss: number;
}

const withPeer = SCENARIOS.some((scenario) => scenario.peer);
if (withPeer) await ensurePeerInstalled();
const database = await benchDatabase('bench');
// The rate limits are on, as in production, and high enough never to refuse: their cost is in the figures.
const env = { JWT_SECRET: SECRET, DB_POOL_MAX: '10', AUTH_RATE_LIMIT: '1000000', COST_RATE_LIMIT: '1000000000' };
const ours = await startServerProcess(database.url, env, 1);
const servers: Partial<Record<Kind, ServerProcess>> = { ours };
const admin = new pg.Client({ connectionString: database.url });
await admin.connect();
await admin.query('create extension if not exists pg_stat_statements');
servers.lean = await startScript('bench/baselines/lean.ts', database.url, env, 1);
servers.floor = await startScript('bench/baselines/floor.ts', database.url, env, 1);
// The peer reads the schema ours has just migrated, plus the one function it needs.
if (withPeer) {
  await preparePeerDatabase(admin);
  servers.peer = await startPeer(database.url, { DB_POOL_MAX: env.DB_POOL_MAX }, 1);
}

const { signUp } = await graphql<{ signUp: { token: string; user: { id: string } } }>(
  ours.url,
  'mutation($input: SignUpInput!) { signUp(input: $input) { token user { id } } }',
  { input: { email: 'bench@example.com', password: 'bench-password' } },
);
await admin.query(
  `insert into tasks (id, created_at, updated_at, title, description, status, priority, tags, due_date, completed_at, owner_id)
   select gen_random_uuid(), now() - make_interval(secs => i), now() - make_interval(secs => i), 'Task ' || i,
          case when i % 3 = 0 then 'Description of task ' || i end,
          (array['PENDING','IN_PROGRESS','COMPLETED'])[1 + i % 3], (array['LOW','MEDIUM','HIGH','URGENT'])[1 + i % 4],
          array['tag-' || (i % 7), 'tag-' || (i % 11)],
          case when i % 4 = 0 then null else now() + make_interval(days => (i % 60) - 30) end,
          case when i % 3 = 2 then now() - make_interval(secs => i) end, $1
   from generate_series(1, ${TASKS}) as i`,
  [signUp.user.id],
);
const owner = () => signUp.user.id;
await admin.query('vacuum analyze tasks');

async function statementsSoFar(): Promise<number> {
  const { rows } = await admin.query<{ calls: string | null }>(
    `select sum(calls) as calls from pg_stat_statements where dbid = (select oid from pg_database where datname = current_database())
       and query not like '%pg_stat_statements%'`,
  );
  return Number(rows[0]!.calls ?? 0);
}

async function load(kind: Kind, scenario: Scenario, seconds: number): Promise<Measurement> {
  let n = 0;
  let invalid = 0;
  const server = servers[kind]!;
  const peer = kind === 'peer' ? scenario.peer! : undefined;
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssOf(server.child.pid!))), 200);
  await admin.query('select pg_stat_statements_reset()');
  const before = await statementsSoFar();
  const result = await autocannon({
    url: `${server.url}/graphql`,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        setupRequest: (request) => ({
          ...request,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${signUp.token}` },
          body: JSON.stringify(
            peer
              ? { operationName: scenario.operationName, query: peer.query, variables: peer.variables() }
              : {
                  operationName: scenario.operationName,
                  query: kind === 'floor' ? undefined : scenario.query[kind as 'ours' | 'lean'],
                  variables: scenario.variables(n++),
                },
          ),
        }),
        onResponse: (status, body) => {
          try {
            const parsed = JSON.parse(body) as { data?: Record<string, unknown>; errors?: unknown };
            if (status !== 200 || parsed.errors || !parsed.data || !(peer ?? scenario).check(parsed.data)) invalid++;
          } catch {
            invalid++;
          }
        },
      },
    ],
  });
  clearInterval(sampler);
  const statements = (await statementsSoFar()) - before - 1;
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    invalid,
    sqlPerRequest: result.requests.total > 0 ? statements / result.requests.total : 0,
    peakRss,
  };
}

const kindsOf = (scenario: Scenario): Kind[] => (scenario.peer ? ['ours', 'lean', 'floor', 'peer'] : ['ours', 'lean', 'floor']);
const results: Record<string, Record<Kind, Measurement[]>> = {};
let voided = 0;
for (const scenario of SCENARIOS) {
  results[scenario.id] = { ours: [], lean: [], floor: [], peer: [] };
  const KINDS = kindsOf(scenario);
  for (let round = 0; round < ROUNDS; round++) {
    const order = KINDS.map((_, i) => KINDS[(i + round + SCENARIOS.indexOf(scenario)) % KINDS.length]!);
    for (const kind of order) {
      await load(kind, scenario, WARMUP_S);
      const measured = await load(kind, scenario, MEASURE_S);
      if (measured.errors > 0 || measured.invalid > 0) {
        voided++;
        process.stderr.write(
          `voided: ${scenario.id} ${kind} round ${round + 1} (${measured.errors} errors, ${measured.invalid} invalid answers)\n`,
        );
      }
      results[scenario.id]![kind].push(measured);
      process.stderr.write(`${scenario.id} ${kind} round ${round + 1}: ${measured.rps.toFixed(0)} req/s\n`);
    }
  }
}
await admin.end();
for (const server of Object.values(servers)) await server!.stop();
database.stop();

// Medians over valid rounds; ratios per round, then their median.
const rows: string[] = [];
const chart: { id: string; lean: number; floor: number; peer?: number }[] = [];
for (const scenario of SCENARIOS) {
  const byKind = results[scenario.id]!;
  const valid = (kind: Kind) => byKind[kind].filter((m) => m.errors === 0 && m.invalid === 0);
  const ratio = (other: Kind) => median(byKind.ours.map((m, i) => m.rps / (byKind[other][i]?.rps ?? NaN)));
  chart.push({ id: scenario.id, lean: ratio('lean'), floor: ratio('floor'), ...(scenario.peer ? { peer: ratio('peer') } : {}) });
  for (const kind of kindsOf(scenario)) {
    const ms = valid(kind);
    const all = byKind[kind];
    rows.push(
      `| ${scenario.id} | ${kind} | ${median(ms.map((m) => m.rps)).toFixed(0)} | ${median(ms.map((m) => m.p50))} | ${median(ms.map((m) => m.p99))} | ${all.reduce((a, m) => a + m.errors + m.invalid, 0)} | ${median(ms.map((m) => m.sqlPerRequest)).toFixed(2)} | ${mb(Math.max(...all.map((m) => m.peakRss)))} |`,
    );
  }
  const p99 = median(byKind.ours.map((m, i) => m.p99 / (byKind.lean[i]?.p99 ?? NaN)));
  rows.push(`| ${scenario.id} | **ours/lean** | **${ratio('lean').toFixed(2)}** | | **${p99.toFixed(2)}×** | | | |`);
  rows.push(`| ${scenario.id} | **ours/floor** | **${ratio('floor').toFixed(2)}** | | | | | |`);
  if (scenario.peer) {
    const p99Peer = median(byKind.ours.map((m, i) => m.p99 / (byKind.peer[i]?.p99 ?? NaN)));
    rows.push(`| ${scenario.id} | **ours/peer** | **${ratio('peer').toFixed(2)}** | | **${p99Peer.toFixed(2)}×** | | | |`);
  }
}

const table = [
  `Run ${new Date().toISOString()}${QUICK ? ' (quick)' : ''}: ${ROUNDS} round(s) of ${MEASURE_S} s after a ${WARMUP_S} s warm-up, ${CONNECTIONS} connections,`,
  `${TASKS.toLocaleString('en')} tasks, servers on core 1 and the load generator on core 0${hasTaskset() ? '' : ' (taskset missing: unpinned)'}; ${voided} round(s) voided.`,
  '',
  ...SCENARIOS.map((s) => `- ${s.id}: ${s.title}`),
  '',
  '| scenario | server | req/s | p50 ms | p99 ms | errors | SQL/request | peak RSS |',
  '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows,
  '',
].join('\n');
process.stdout.write(`\n${table}`);
const dir = join(PROJECT_ROOT, 'bench', 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'latest.md'), `# Benchmark results\n\n${table}\n![ours / lean and ours / floor throughput](ratios.svg)\n`);
writeFileSync(join(dir, 'ratios.svg'), ratioChart(chart));

/** Bars of ours/lean, ours/floor and (where there is one) ours/peer throughput per scenario, with the 0.5 and 1.0 lines. */
function ratioChart(data: { id: string; lean: number; floor: number; peer?: number }[]): string {
  const width = 560;
  const height = 260;
  const left = 40;
  const bottom = 220;
  const scale = (v: number) => bottom - Math.min(v, 1.2) * 160;
  const group = (width - left - 20) / data.length;
  const bars = data
    .map((d, i) => {
      const x = left + i * group + 15;
      const bar = (v: number, dx: number, color: string) =>
        `<rect x="${x + dx}" y="${scale(v)}" width="28" height="${bottom - scale(v)}" fill="${color}"/><text x="${x + dx + 14}" y="${scale(v) - 4}" font-size="11" text-anchor="middle">${v.toFixed(2)}</text>`;
      const peer = d.peer === undefined ? '' : bar(d.peer, 64, '#6acc64');
      return `${bar(d.lean, 0, '#4878d0')}${bar(d.floor, 32, '#ee854a')}${peer}<text x="${x + 30}" y="${bottom + 16}" font-size="13" text-anchor="middle">${d.id}</text>`;
    })
    .join('');
  const line = (v: number, label: string) =>
    `<line x1="${left}" x2="${width - 10}" y1="${scale(v)}" y2="${scale(v)}" stroke="#999" stroke-dasharray="4 3"/><text x="${left - 4}" y="${scale(v) + 4}" font-size="11" text-anchor="end">${label}</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${left}" y="18" font-size="14">Throughput of ours as a fraction of lean (blue), floor (orange) and PostGraphile (green)</text>
${line(1, '1.0')}${line(0.5, '0.5')}<line x1="${left}" x2="${width - 10}" y1="${bottom}" y2="${bottom}" stroke="black"/>
${bars}
</svg>
`;
}
