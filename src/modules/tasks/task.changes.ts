import type { EntityManager } from '@mikro-orm/postgresql';
import { resyncRequired } from '../../graphql/errors.js';
import { parseSnapshot, positionsAfter, type ChangeKey, type ChangePosition } from './change-position.js';
import { epochMs, textArray } from '../../db/sql.js';
import { OWNER_COLUMNS } from './task.sql.js';
import { taskRecord, type TaskRecord, type TaskRow } from './task.record.js';

export enum TaskChangeKind {
  CREATED = 'CREATED',
  UPDATED = 'UPDATED',
  DELETED = 'DELETED',
}

export interface TaskChange {
  key: ChangeKey;
  /** The position right after it, as it was read (each subscriber holds its own: see UserLog). */
  after: ChangePosition;
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
/** The snapshot the statement reads in (pg_current_snapshot is the statement's own in READ COMMITTED). */
const SNAPSHOT = 'pg_current_snapshot()::text';

/**
 * Whether `position` can no longer be continued without a gap, as a column of `task_change_pruned p`: pruning
 * deleted a change it may not include. Every change pruned for an owner is of a transaction at or below the one
 * `p` records, and only committed changes are pruned: lost are those of a transaction at or above the snapshot's
 * xmax, or of one it saw running that has committed since, or is too old for PostgreSQL to tell (pg_xact_status
 * is null once vacuum has frozen past it); one still running, or rolled back, lost nothing.
 */
function lostColumn(position: ChangePosition): { sql: string; params: unknown[] } {
  return {
    sql: `(p.xid is not null and (p.xid >= ?::text::xid8 or exists(
      select 1 from unnest(?::text[]::xid8[]) x
      where x <= p.xid and case when x < pg_snapshot_xmax(pg_current_snapshot()) then coalesce(pg_xact_status(x), 'committed') = 'committed' end)))`,
    params: [String(position.xmax), textArray(position.xip.map(String))],
  };
}

/**
 * An owner's changes that `position` does not include, in reading order, at most `limit`, selecting `columns` of
 * `task_changes c`: the rest of its partial transaction first (it committed before anything else still to read),
 * then by transaction and id. Three index ranges of (owner_id, xid, id), each cut at the limit, so that a replay
 * reads each change once however long the log.
 */
function notIncluded(ownerId: string, position: ChangePosition, limit: number, columns: string): { sql: string; params: unknown[] } {
  const { xmax, xip, partial } = position;
  const partialXid = partial?.xid ?? 0;
  const branch = (condition: string, order: string) =>
    `(select ${columns} from task_changes c where c.owner_id = ?::uuid and ${condition} order by ${order} limit ?)`;
  const sql = `select * from (
      ${branch('c.xid = ?::text::xid8 and c.id > ?', 'c.id')}
      union all ${branch('c.xid = any(?::text[]::xid8[])', 'c.xid, c.id')}
      union all ${branch('c.xid >= ?::text::xid8', 'c.xid, c.id')}
    ) c order by c.xid = ?::text::xid8 desc, c.xid, c.id limit ?`;
  const rest = xip.filter((xid) => xid !== partialXid).map(String);
  const from = partialXid === xmax ? xmax + 1 : xmax;
  return {
    sql,
    params: [
      ...[ownerId, String(partialXid), partial?.id ?? 0, limit],
      ...[ownerId, textArray(rest), limit],
      ...[ownerId, String(from), limit],
      String(partialXid),
      limit,
    ],
  };
}

type ChangeRow = Pick<TaskRow, 'owner_id' | 'owner_email' | 'owner_name' | 'owner_created_at' | 'owner_updated_at'> & {
  snapshot: string;
  lost: boolean;
  xid: string | null;
  id: string;
  kind: TaskChangeKind;
  task_id: string;
  at: number;
  task: Omit<TaskRow, `owner_${string}`> | null;
};

export interface LogRead {
  /** The changes after the position, in reading order. */
  changes: TaskChange[];
  /** The position after the read: the snapshot it read in when it read everything there was, else its last change's. */
  through: ChangePosition;
  /** A change after the position was pruned: the reader cannot continue without a gap. */
  pruned: boolean;
}

/**
 * The owner's changes after `position`, at most `limit`: those of every transaction that has become visible since
 * (see change-position.ts). A transaction still running delays only its own changes, which a later read takes
 * once it commits.
 */
export async function changesAfter(em: EntityManager, ownerId: string, position: ChangePosition, limit: number): Promise<LogRead> {
  const query = notIncluded(ownerId, position, limit, 'c.xid, c.id, c.kind, c.task_id, c.at, c.task, c.owner_id');
  const lost = lostColumn(position);
  const rows = await em.execute<ChangeRow[]>(
    `select ${SNAPSHOT} as snapshot, ${lost.sql} as lost, ${xidNumber('c.xid')} as xid, c.id, c.kind, c.task_id, ${epochMs('c.at')} as at, c.task, ${OWNER_COLUMNS}
     from (select 1) one
     left join task_change_pruned p on p.owner_id = ?::uuid
     left join lateral (${query.sql}) c on true
     left join users u on u.id = c.owner_id`,
    [...lost.params, ownerId, ...query.params],
  );
  const first = rows[0]!;
  const now = parseSnapshot(first.snapshot);
  // In reading order (the joins after the lateral read need not keep it).
  const partialXid = String(position.partial?.xid);
  const found = rows
    .filter((row) => row.xid !== null)
    .sort(
      (a, b) => Number(b.xid === partialXid) - Number(a.xid === partialXid) || Number(a.xid) - Number(b.xid) || Number(a.id) - Number(b.id),
    );
  const { afters, through } = positionsAfter(
    position,
    now,
    found.map((row) => ({ xid: Number(row.xid), id: Number(row.id) })),
    found.length < limit,
  );
  const changes = found.map(({ xid, id, kind, task_id, at, task, ...owner }, i): TaskChange => {
    const record = task && taskRecord({ ...task, ...owner });
    return {
      key: { xid: Number(xid), id: Number(id) },
      after: afters[i]!,
      kind,
      taskId: task_id,
      task: record,
      at: new Date(at),
      bytes: CHANGE_OVERHEAD_BYTES + textBytes(record) + 8 * afters[i]!.xip.length,
    };
  });
  return { changes, through, pruned: first.lost };
}

/**
 * Where a feed starts: at the snapshot it is opened in when `after` is absent (every change that committed before
 * is included, every later one follows), else after that cursor, provided the log still holds everything since:
 * RESYNC_REQUIRED when a change it does not include was pruned or is past the retention, or when the cursor is
 * ahead of the log (a snapshot this server has not reached, as after a restore from backup).
 */
export async function feedStart(
  em: EntityManager,
  ownerId: string,
  position: ChangePosition | null,
  retentionHours: number,
): Promise<ChangePosition> {
  if (position === null) {
    const [row] = await em.execute<{ snapshot: string }[]>(`select ${SNAPSHOT} as snapshot`);
    return parseSnapshot(row!.snapshot);
  }
  const next = notIncluded(ownerId, position, 1, 'c.xid, c.id, c.at');
  const lost = lostColumn(position);
  const [row] = await em.execute<{ snapshot: string; lost: boolean; next_expired: boolean | null }[]>(
    `select ${SNAPSHOT} as snapshot, ${lost.sql} as lost,
       (select n.at < now() - make_interval(hours => ?) from (${next.sql}) n) as next_expired
     from (select 1) one left join task_change_pruned p on p.owner_id = ?::uuid`,
    [...lost.params, retentionHours, ...next.params, ownerId],
  );
  const now = parseSnapshot(row!.snapshot);
  if (position.xmax > now.xmax || row!.lost || row!.next_expired === true) throw resyncRequired();
  return position;
}

/** The oldest transaction still running in this database: what subscribers may still get changes of. */
export interface OldestTransaction {
  pid: number;
  applicationName: string | null;
  state: string | null;
  database: string | null;
  ageSeconds: number;
}

/**
 * The oldest running transaction of this database that has a transaction id (only those can write a change), or
 * null. Its changes reach subscribers when it commits; cursors issued meanwhile name it as still running. Without the privileges of pg_read_all_stats, PostgreSQL shows other roles' sessions without
 * their transaction ids: only this role's own are seen then.
 */
export async function oldestTransaction(em: EntityManager): Promise<OldestTransaction | null> {
  const [row] = await em.execute<
    { pid: number; application_name: string | null; state: string | null; datname: string | null; age: number }[]
  >(
    `select pid, application_name, state, datname, extract(epoch from (clock_timestamp() - xact_start))::float8 as age
     from pg_stat_activity where backend_xid is not null and pid <> pg_backend_pid() and datname = current_database()
     order by age(backend_xid) desc limit 1`,
  );
  return row
    ? { pid: row.pid, applicationName: row.application_name, state: row.state, database: row.datname, ageSeconds: Math.max(0, row.age) }
    : null;
}

/** Tells every instance's listener that these owners' tasks changed (outside the transaction; see CHANGES_CHANNEL). */
export async function announce(em: EntityManager, owners: string[]): Promise<void> {
  await em.execute(`select pg_notify('${CHANGES_CHANNEL}', owner) from unnest(?::text[]) owner`, [textArray(owners)]);
}

/** Which of `owners` have a change that `since` does not include, and the snapshot to ask from next time. */
export async function ownersChangedSince(
  em: EntityManager,
  owners: string[],
  since: ChangePosition,
): Promise<{ now: ChangePosition; owners: string[] }> {
  const [row] = await em.execute<{ snapshot: string; owners: string[] }[]>(
    `select ${SNAPSHOT} as snapshot, array(
       select distinct owner_id::text from task_changes
       where owner_id = any(?::uuid[]) and (xid >= ?::text::xid8 or xid = any(?::text[]::xid8[]))) as owners`,
    [textArray(owners), String(since.xmax), textArray(since.xip.map(String))],
  );
  return { now: parseSnapshot(row!.snapshot), owners: row!.owners };
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
