// Shared by the benchmark scripts: a PostgreSQL of their own, the server as operators run it, and samplers.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import pg from 'pg';
import { PROJECT_ROOT } from '../src/config/app-version.js';
import { freePort, startEmbeddedPostgres, type EmbeddedDatabase } from '../src/embedded/embedded.js';
import { createLogger } from '../src/observability/logger.js';
import { temporaryProductionInstall } from '../scripts/production-install.js';

export const quietLogger = createLogger({ env: 'test', logLevel: 'warn' });

/** The embedded PostgreSQL under .data/bench with a fresh database, or the server BENCH_DATABASE_URL names. */
export async function benchDatabase(
  name: string,
  settings: Record<string, string> = {},
): Promise<{ url: string; admin: string; stop(): void }> {
  const external = process.env.BENCH_DATABASE_URL;
  let embedded: EmbeddedDatabase | undefined;
  let admin: string;
  if (external) {
    admin = external;
  } else {
    // Every benchmark starts the shared cluster with pg_stat_statements, so that whichever started it (and may have
    // left it running), `npm run bench` can count statements.
    const statements = { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'all' };
    embedded = await startEmbeddedPostgres({
      dataDir: join(PROJECT_ROOT, '.data', 'bench'),
      logger: quietLogger,
      settings: { ...statements, ...settings },
    });
    admin = embedded.urlFor('postgres');
  }
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`drop database if exists ${name} with (force)`);
  await client.query(`create database ${name}`);
  await client.end();
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return { url: url.toString(), admin, stop: () => embedded?.stop() };
}

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Ours as production runs it: `node dist/src/main.js` from a production install (built once per benchmark run,
 * in a temporary folder), in production mode, in its own process, on `cpu` when taskset is there.
 */
export async function startServerProcess(databaseUrl: string, env: Record<string, string> = {}, cpu?: number): Promise<ServerProcess> {
  const install = await temporaryProductionInstall();
  return startNode(['dist/src/main.js'], install, databaseUrl, { NODE_OPTIONS: IMAGE_NODE_OPTIONS, ...env }, cpu);
}

/** The V8 heap settings the image ships (`ENV NODE_OPTIONS` in the Dockerfile), which ours runs with by default. */
export const IMAGE_NODE_OPTIONS = /^ENV NODE_OPTIONS="([^"]*)"$/m.exec(readFileSync(join(PROJECT_ROOT, 'Dockerfile'), 'utf8'))?.[1] ?? '';

/** A TypeScript entry point of the project (a baseline) in its own process, configured like the server. */
export function startScript(script: string, databaseUrl: string, env: Record<string, string> = {}, cpu?: number): Promise<ServerProcess> {
  return startNode(['--import', '@swc-node/register/esm-register', join(PROJECT_ROOT, script)], PROJECT_ROOT, databaseUrl, env, cpu);
}

/** Node with these arguments in `cwd`, configured as the server is, once it answers its readiness route. */
export async function startNode(
  args: string[],
  cwd: string,
  databaseUrl: string,
  env: Record<string, string> = {},
  cpu?: number,
  { ready = '/health/ready', output = 'inherit' }: { ready?: string; output?: 'inherit' | 'pipe' } = {},
): Promise<ServerProcess> {
  const port = await freePort();
  const [command, commandArgs] =
    cpu !== undefined && hasTaskset() ? ['taskset', ['-c', String(cpu), process.execPath, ...args]] : [process.execPath, args];
  const child = spawn(command as string, commandArgs as string[], {
    cwd,
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      NODE_ENV: 'production',
      DATABASE_URL: databaseUrl,
      JWT_SECRET: randomBytes(24).toString('hex'),
      LOG_LEVEL: 'warn',
      PORT: String(port),
      ...env,
    },
    stdio: ['ignore', output, 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntilReady(`${url}${ready}`, child);
  return {
    url,
    child,
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export async function waitUntilReady(url: string, child?: ChildProcess, timeoutMs = 60_000): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (child && child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms`);
}

let taskset: boolean | undefined;
export function hasTaskset(): boolean {
  taskset ??= spawnSync('taskset', ['-c', '0', 'true']).status === 0;
  return taskset;
}

/** Resident set size of a process, in bytes. */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

/**
 * The server's request pool's connections to `database` right now, as PostgreSQL counts them: not its health
 * probe's or its LISTEN connections (each named apart), nor PostgreSQL's own autovacuum workers.
 */
export async function connectionsTo(admin: pg.Client, database: string): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity
     where datname = $1 and backend_type = 'client backend' and application_name = 'todo-graphql-server'`,
    [database],
  );
  return rows[0]!.n;
}

export async function graphql<T>(url: string, query: string, variables?: Record<string, unknown>, token?: string): Promise<T> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T; errors?: unknown[] };
  if (body.errors) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data as T;
}

export const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;

/** Scenario B's document, for ours and the lean baseline: a page of 20 tasks with every field and the owner. */
export const PAGE_QUERY =
  'query Page { tasks(first: 20) { edges { node { id title description status priority tags dueDate completedAt isOverdue createdAt updatedAt owner { id email } } } } }';

/**
 * What the tools that look into ours alone (profile, allocation) run, by scenario, against `userWithTasks`'s user:
 * B's page, C's filtered page with its count (over that user's tags and statuses), D's creation.
 */
interface ToolScenario {
  document: string;
  /** How many tasks `userWithTasks` gives the user first. */
  tasks: number;
}

const TOOL_SCENARIOS: Record<string, ToolScenario> = {
  B: { document: PAGE_QUERY, tasks: 40 },
  C: {
    document:
      'query Filtered { tasks(first: 100, filter: { tagsAny: ["a", "z"], status: [PENDING, IN_PROGRESS] }) { totalCount edges { node { id title status tags } } } }',
    tasks: 120,
  },
  D: { document: 'mutation Create { createTask(input: { title: "profiled" }) { id title status } }', tasks: 40 },
};

/** A tool's `--scenario`. */
export function toolScenario(id: string): ToolScenario {
  const found = TOOL_SCENARIOS[id];
  if (!found) throw new Error(`--scenario is one of ${Object.keys(TOOL_SCENARIOS).join(', ')}`);
  return found;
}

/** For the tools that look into ours alone (profile, allocation): a new user with `count` tasks; its token. */
export async function userWithTasks(url: string, email: string, count = 40): Promise<string> {
  const { signUp } = await graphql<{ signUp: { token: string } }>(
    url,
    'mutation($input: SignUpInput!) { signUp(input: $input) { token } }',
    {
      input: { email, password: 'bench-password' },
    },
  );
  for (let i = 0; i < count; i++) {
    await graphql(
      url,
      'mutation($t: String!) { createTask(input: { title: $t, tags: ["a", "b"], dueDate: "2030-01-01T00:00:00Z" }) { id } }',
      { t: `t${i}` },
      signUp.token,
    );
  }
  return signUp.token;
}

/** One document from `connections` connections for `seconds`, as that user. */
export function loadWith(url: string, token: string, query: string, seconds: number, connections = 20): Promise<autocannon.Result> {
  return autocannon({
    url: `${url}/graphql`,
    connections,
    duration: seconds,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query }),
  });
}

/** The middle value (the upper one of an even count); NaN for none. */
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
