// PostGraphile 5 (Amber preset) as a peer server for the benchmark harness: installs bench/peer/ on demand (it is
// not a dependency of the project), adds the one database function it needs, starts bench/peer/server.mjs in its
// own process like `startScript` does for ours, and holds scenario B's query in PostGraphile's own schema.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import type pg from 'pg';
import { PROJECT_ROOT } from '../src/config/app-version.js';
import { startNode, type ServerProcess } from './support.js';

const PEER_DIR = join(PROJECT_ROOT, 'bench', 'peer');

/** `npm ci --prefix bench/peer` under this Node (24), unless bench/peer/node_modules/postgraphile is there. */
export async function ensurePeerInstalled(): Promise<void> {
  if (existsSync(join(PEER_DIR, 'node_modules', 'postgraphile'))) return;
  const npmArgs = ['ci', '--prefix', PEER_DIR, '--no-audit', '--no-fund'];
  // Under `npm run`, npm_execpath is npm's own script: run it with this Node. Otherwise the `npm` on PATH, with this
  // Node first on PATH for its `#!/usr/bin/env node`.
  const npmCli = process.env.npm_execpath;
  const [command, args] = npmCli?.endsWith('.js') ? [process.execPath, [npmCli, ...npmArgs]] : ['npm', npmArgs];
  const child = spawn(command, args, {
    cwd: PROJECT_ROOT,
    env: { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}` },
    // npm's output goes to stderr: the harness prints its table on stdout.
    stdio: ['ignore', process.stderr, process.stderr],
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`npm ci --prefix bench/peer exited with ${code}`);
}

/**
 * What the peer needs that our app does not have, in the benchmark database only: the `isOverdue` computed column
 * (PostGraphile exposes a `tasks_is_overdue(tasks)` function as `Task.isOverdue`). Same rule as ours.
 */
export async function preparePeerDatabase(admin: pg.Client): Promise<void> {
  await admin.query(
    `create or replace function tasks_is_overdue(t tasks) returns boolean language sql stable as $$
       select t.due_date is not null and t.due_date < now() and t.status <> 'COMPLETED' $$`,
  );
}

/** bench/peer/server.mjs in its own process, configured as ours is, on `cpu` when taskset is there. */
export function startPeer(databaseUrl: string, env: Record<string, string> = {}, cpu?: number): Promise<ServerProcess> {
  return startNode([join(PEER_DIR, 'server.mjs')], PEER_DIR, databaseUrl, { GRAPHILE_ENV: 'production', DB_POOL_MAX: '10', ...env }, cpu);
}

/**
 * Scenario B in PostGraphile's schema: the owner's 20 newest tasks, every field, and the owner's id and email.
 * Amber's `id` is a global Node ID, so the uuids are `rowId` (task) and `userByOwnerId.rowId` (owner); ours scopes
 * the list by the token, this one by `condition: { ownerId }`.
 */
export const PEER_PAGE_QUERY = `query Page($ownerId: UUID!) {
  allTasks(first: 20, orderBy: [CREATED_AT_DESC, PRIMARY_KEY_DESC], condition: { ownerId: $ownerId }) {
    edges { node { rowId title description status priority tags dueDate completedAt isOverdue createdAt updatedAt userByOwnerId { rowId email } } }
  }
}`;

export function peerVariables(ownerId: string): Record<string, unknown> {
  return { ownerId };
}

type PeerPage = { allTasks?: { edges?: { node: { rowId?: unknown; userByOwnerId?: { email?: unknown } | null } }[] } };

/** 20 rows, each with a string id and an owner email, as scenario B's check asks of ours. */
export function checkPeerPage(data: Record<string, unknown>): boolean {
  const edges = (data as PeerPage).allTasks?.edges;
  return edges?.length === 20 && edges.every(({ node }) => typeof node.rowId === 'string' && typeof node.userByOwnerId?.email === 'string');
}
