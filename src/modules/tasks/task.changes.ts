import type { EntityManager } from '@mikro-orm/postgresql';
import { badUserInput, resyncRequired } from '../../graphql/errors.js';
import { epochMs, OWNER_COLUMNS, textArray } from './task.sql.js';
import { taskRecord, type TaskRecord, type TaskRow } from './task.record.js';

export enum TaskChangeKind {
  CREATED = 'CREATED',
  UPDATED = 'UPDATED',
  DELETED = 'DELETED',
}

/**
 * A place in the change log: after every change of a transaction below `xid`, and after the changes of
 * transaction `xid` up to `id`. Changes are ordered by (xid, id): for one task that is commit order, because
 * its writers queue on an advisory lock before they have a transaction id (TaskService.get); changes to
 * different tasks may be delivered in another order than they committed.
 */
export interface ChangePosition {
  xid: number;
  id: number;
}

export const isAfter = (a: ChangePosition, b: ChangePosition): boolean => a.xid > b.xid || (a.xid === b.xid && a.id > b.id);

export interface TaskChange {
  position: ChangePosition;
  kind: TaskChangeKind;
  taskId: string;
  /** The task as this change committed it; null for a deletion. */
  task: TaskRecord | null;
  at: Date;
  /** What holding it in memory costs, about: its text at two bytes a character, and the rest. */
  bytes: number;
}

/** Fields, dates and object headers of a change, besides its text. */
const CHANGE_OVERHEAD_BYTES = 512;

const textBytes = (task: TaskRecord | null) =>
  task ? 2 * (task.title.length + (task.description?.length ?? 0) + task.tags.reduce((sum, tag) => sum + tag.length, 0)) : 0;

/**
 * The channel a committed change is announced on, with the owner's id as its payload. The writing transaction
 * does not announce it: PostgreSQL serialises the commits of every transaction that notifies, cluster-wide
 * (measured with pgbench on this machine, ten clients inserting: 2,670 transactions per second without NOTIFY,
 * 970 with it). The server announces after the commit instead (ChangeFeed.committed), and subscribers also sweep
 * the log every second, so a change written by anything else, or whose announcement was lost, still arrives.
 */
export const CHANGES_CHANNEL = 'task_changes';

/** xid8 has no cast to a number; its text is an integer below 2^53 until 2^21 wraparounds of the 32-bit xid. */
const xidNumber = (expression: string) => `${expression}::text::int8`;
/** Every transaction below it has ended; every one that ends later is at or above it. */
const HORIZON = xidNumber('pg_snapshot_xmin(pg_current_snapshot())');

/** The last position pruning deleted of an owner's changes, from the columns of task_change_pruned. */
const prunedThrough = (row: { pruned_xid: string | null; pruned_id: string | null }): ChangePosition | null =>
  row.pruned_xid === null ? null : { xid: Number(row.pruned_xid), id: Number(row.pruned_id) };

type ChangeRow = Pick<TaskRow, 'owner_id' | 'owner_email' | 'owner_name' | 'owner_created_at' | 'owner_updated_at'> & {
  horizon: string;
  pruned_xid: string | null;
  pruned_id: string | null;
  xid: string | null;
  id: string;
  kind: TaskChangeKind;
  task_id: string;
  at: number;
  task: Omit<TaskRow, `owner_${string}`> | null;
};

export interface LogRead {
  /** The changes after the position that are safe to deliver, in order. */
  changes: TaskChange[];
  /** Changes that committed but wait behind an older transaction still running: read again soon. */
  heldBack: boolean;
  /** A change after the position was pruned: the reader cannot continue without a gap. */
  pruned: boolean;
}

/** The owner's changes after `position`, at most `limit`, as far as they are safe to deliver (see HORIZON). */
export async function changesAfter(em: EntityManager, ownerId: string, position: ChangePosition, limit: number): Promise<LogRead> {
  const rows = await em.execute<ChangeRow[]>(
    `select h.horizon, ${xidNumber('p.xid')} as pruned_xid, p.id as pruned_id, c.*
     from (select ${HORIZON} as horizon) h
     left join task_change_pruned p on p.owner_id = ?::uuid
     left join lateral (
       select ${xidNumber('c.xid')} as xid, c.id, c.kind, c.task_id, ${epochMs('c.at')} as at, c.task, ${OWNER_COLUMNS}
       from task_changes c join users u on u.id = c.owner_id
       where c.owner_id = ?::uuid and (c.xid, c.id) > (?::text::xid8, ?) order by c.xid, c.id limit ?
     ) c on true`,
    [ownerId, ownerId, String(position.xid), position.id, limit],
  );
  const first = rows[0]!;
  const horizon = Number(first.horizon);
  const lastPruned = prunedThrough(first);
  const pruned = lastPruned !== null && isAfter(lastPruned, position);
  const changes: TaskChange[] = [];
  let heldBack = false;
  for (const { xid, id, kind, task_id, at, task, ...owner } of rows) {
    if (xid === null) break;
    if (Number(xid) >= horizon) {
      heldBack = true;
      break;
    }
    const record = task && taskRecord({ ...task, ...owner });
    changes.push({
      position: { xid: Number(xid), id: Number(id) },
      kind,
      taskId: task_id,
      task: record,
      at: new Date(at),
      bytes: CHANGE_OVERHEAD_BYTES + textBytes(record),
    });
  }
  return { changes, heldBack, pruned };
}

/**
 * Where a feed starts: from now when `after` is absent (the changes of transactions still running may include
 * some that commit just before the subscription does), else after that cursor, provided the log still holds
 * everything since: RESYNC_REQUIRED when a change after it was pruned or is past the retention, or when the
 * cursor is ahead of the log (no such transaction yet, as after a restore from backup).
 */
export async function feedStart(em: EntityManager, ownerId: string, after: ChangePosition | null, retentionHours: number): Promise<ChangePosition> {
  const [row] = await em.execute<{ horizon: string; next_xid: string; pruned_xid: string | null; pruned_id: string | null; next_expired: boolean | null }[]>(
    `select ${HORIZON} as horizon, ${xidNumber('pg_snapshot_xmax(pg_current_snapshot())')} as next_xid,
       ${xidNumber('p.xid')} as pruned_xid, p.id as pruned_id,
       (select c.at < now() - make_interval(hours => ?) from task_changes c
        where c.owner_id = ?::uuid and (c.xid, c.id) > (?::text::xid8, ?) order by c.xid, c.id limit 1) as next_expired
     from (select 1) one left join task_change_pruned p on p.owner_id = ?::uuid`,
    [retentionHours, ownerId, String(after?.xid ?? 0), after?.id ?? 0, ownerId],
  );
  const lastPruned = prunedThrough(row!);
  if (after === null) {
    const now = { xid: Number(row!.horizon), id: 0 };
    // Past anything pruned, even with a transaction open for longer than the retention holding the horizon back.
    return lastPruned && isAfter(lastPruned, now) ? lastPruned : now;
  }
  const pruned = lastPruned !== null && isAfter(lastPruned, after);
  if (after.xid >= Number(row!.next_xid) || pruned || row!.next_expired === true) throw resyncRequired();
  return after;
}

/** The transaction that holds the horizon back: the oldest still running, on any database of the server. */
export interface OldestTransaction {
  pid: number;
  applicationName: string | null;
  state: string | null;
  database: string | null;
  ageSeconds: number;
}

/**
 * The oldest running transaction that has a transaction id (only those hold HORIZON back), on any database of the
 * server, or null. Without the privileges of pg_read_all_stats, PostgreSQL shows other roles' sessions without
 * their transaction ids: only this role's own are seen then.
 */
export async function oldestTransaction(em: EntityManager): Promise<OldestTransaction | null> {
  const [row] = await em.execute<{ pid: number; application_name: string | null; state: string | null; datname: string | null; age: number }[]>(
    `select pid, application_name, state, datname, extract(epoch from (clock_timestamp() - xact_start))::float8 as age
     from pg_stat_activity where backend_xid is not null and pid <> pg_backend_pid()
     order by age(backend_xid) desc limit 1`,
  );
  return row ? { pid: row.pid, applicationName: row.application_name, state: row.state, database: row.datname, ageSeconds: Math.max(0, row.age) } : null;
}

/** Tells every instance's listener that these owners' tasks changed (outside the transaction; see CHANGES_CHANNEL). */
export async function announce(em: EntityManager, owners: string[]): Promise<void> {
  await em.execute(`select pg_notify('${CHANGES_CHANNEL}', owner) from unnest(?::text[]) owner`, [textArray(owners)]);
}

/** Which of `owners` have a change of a transaction at or above `xid`, and the horizon to ask from next time. */
export async function ownersChangedSince(em: EntityManager, owners: string[], xid: number): Promise<{ horizon: number; owners: string[] }> {
  const [row] = await em.execute<{ horizon: string; owners: string[] }[]>(
    `select ${HORIZON} as horizon, array(
       select distinct owner_id::text from task_changes where owner_id = any(?::uuid[]) and xid >= ?::text::xid8) as owners`,
    [textArray(owners), String(xid)],
  );
  return { horizon: Number(row!.horizon), owners: row!.owners };
}

/**
 * Deletes changes past the retention, a batch at a time (oldest first, by the index on `at`), and keeps per
 * owner the last position deleted, in the same statement; returns how many. Any instance may run it;
 * concurrent runs only share the work.
 */
export async function pruneChanges(em: EntityManager, retentionHours: number, batch = 5000): Promise<number> {
  let deleted = 0;
  for (;;) {
    const [row] = await em.execute<{ n: number }[]>(
      `with gone as (
         delete from task_changes where ctid = any(array(
           select ctid from task_changes where at < now() - make_interval(hours => ?) order by at limit ?))
         returning owner_id, xid, id
       ), marked as (
         insert into task_change_pruned as p (owner_id, xid, id)
         select distinct on (owner_id) owner_id, xid, id from gone order by owner_id, xid desc, id desc
         on conflict (owner_id) do update set xid = excluded.xid, id = excluded.id
         where (p.xid, p.id) < (excluded.xid, excluded.id)
       )
       select count(*)::int as n from gone`,
      [retentionHours, batch],
    );
    deleted += row!.n;
    if (row!.n < batch) return deleted;
  }
}

const CURSOR_TEXT = /^p:(0|[1-9]\d{0,15}):(0|[1-9]\d{0,15})$/;
/** What cursors were before positions (a per-user seq): well formed, but the log they point into is gone. */
const SEQ_CURSOR_TEXT = /^c:(0|[1-9]\d{0,15})$/;

/** Opaque to clients: base64url of the change's position. */
export function encodeChangeCursor({ xid, id }: ChangePosition): string {
  return Buffer.from(`p:${xid}:${id}`).toString('base64url');
}

/**
 * The position a cursor names; anything we did not issue is BAD_USER_INPUT on `after`, a cursor of the log
 * before positions RESYNC_REQUIRED.
 */
export function decodeChangeCursor(cursor: string): ChangePosition {
  const invalid = () => badUserInput('after is not a cursor of this change feed', 'after');
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(cursor)) throw invalid();
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  // Only the encoding we issue: base64url ignores trailing bits, so `cursor + "x"` would decode alike.
  if (Buffer.from(text).toString('base64url') !== cursor) throw invalid();
  if (SEQ_CURSOR_TEXT.test(text)) throw resyncRequired();
  const match = CURSOR_TEXT.exec(text);
  const position = match ? { xid: Number(match[1]), id: Number(match[2]) } : null;
  if (!position || !Number.isSafeInteger(position.xid) || !Number.isSafeInteger(position.id)) throw invalid();
  return position;
}
