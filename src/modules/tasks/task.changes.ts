import type { EntityManager } from '@mikro-orm/postgresql';
import { badUserInput, resyncRequired } from '../../graphql/errors.js';
import { taskRecord, type TaskRecord, type TaskRow } from './task.record.js';

export enum TaskChangeKind {
  CREATED = 'CREATED',
  UPDATED = 'UPDATED',
  DELETED = 'DELETED',
}

export interface TaskChange {
  seq: number;
  kind: TaskChangeKind;
  taskId: string;
  /** The task as this change committed it; null for a deletion. */
  task: TaskRecord | null;
  at: Date;
}

/** The channel a committed change is announced on, with `<owner id>:<seq>` as its payload (ids only). */
export const CHANGES_CHANNEL = 'task_changes';

const epochMs = (column: string) => `(extract(epoch from ${column}) * 1000)::float8`;

/**
 * Takes the owner's next seq, logs the change with the task as it now stands in this transaction, and announces
 * it, in one statement. `at` is read once the counter row is locked (not the transaction's start, as `now()`
 * would be), so a user's changes are in `at` order too, and it is within a statement of the commit. The upsert locks the owner's counter row until the transaction ends, so the owner's
 * changes get their seqs in commit order: a reader "after n" can never miss one that commits later with a
 * smaller seq. `pg_notify` is transactional: listeners hear of the change when it commits, never if it rolls back.
 */
const RECORD = `with head as (
  insert into task_change_seqs as h (owner_id, seq) values (?::uuid, 1)
  on conflict (owner_id) do update set seq = h.seq + 1
  returning seq
), logged as (
  insert into task_changes (owner_id, seq, kind, task_id, at, task)
  select ?::uuid, head.seq, ?, ?::uuid, clock_timestamp(), (
    select json_build_object(
      'id', t.id, 'title', t.title, 'description', t.description, 'status', t.status, 'priority', t.priority,
      'tags', t.tags, 'due_date', ${epochMs('t.due_date')}, 'completed_at', ${epochMs('t.completed_at')},
      'created_at', ${epochMs('t.created_at')}, 'updated_at', ${epochMs('t.updated_at')})
    from tasks t where t.id = ?::uuid
  ) from head
  returning owner_id, seq
)
select seq, pg_notify('${CHANGES_CHANNEL}', owner_id || ':' || seq) from logged`;

/** Logs a change in `em`'s transaction, so that it commits or rolls back with the task; returns its seq. */
export async function recordChange(em: EntityManager, ownerId: string, kind: TaskChangeKind, taskId: string): Promise<number> {
  if (!em.isInTransaction()) throw new Error('a task change must be recorded in the transaction that makes it');
  const [row] = await em.execute<{ seq: string }[]>(RECORD, [ownerId, ownerId, kind, taskId, taskId]);
  return Number(row!.seq);
}

type ChangeRow = Pick<TaskRow, 'owner_id' | 'owner_email' | 'owner_name' | 'owner_created_at' | 'owner_updated_at'> & {
  seq: string;
  kind: TaskChangeKind;
  task_id: string;
  at: number;
  task: Omit<TaskRow, `owner_${string}`> | null;
};

/** The owner's changes after `seq`, in seq order (which is commit order), at most `limit` of them. */
export async function changesAfter(em: EntityManager, ownerId: string, seq: number, limit: number): Promise<TaskChange[]> {
  const rows = await em.execute<ChangeRow[]>(
    `select c.seq, c.kind, c.task_id, ${epochMs('c.at')} as at, c.task,
       u.id as owner_id, u.email as owner_email, u.name as owner_name,
       ${epochMs('u.created_at')} as owner_created_at, ${epochMs('u.updated_at')} as owner_updated_at
     from task_changes c join users u on u.id = c.owner_id
     where c.owner_id = ?::uuid and c.seq > ? order by c.seq limit ?`,
    [ownerId, seq, limit],
  );
  return rows.map(({ seq, kind, task_id, at, task, ...owner }) => ({
    seq: Number(seq),
    kind,
    taskId: task_id,
    task: task && taskRecord({ ...task, ...owner }),
    at: new Date(at),
  }));
}

/**
 * Where a feed starts: after the owner's last change when `after` is absent, else after that change, provided
 * the log still holds everything since (RESYNC_REQUIRED when part of it is past the retention or pruned, or when
 * the cursor is ahead of the log, as after a restore from backup).
 */
export async function feedStart(em: EntityManager, ownerId: string, after: number | null, retentionHours: number): Promise<number> {
  const [row] = await em.execute<{ head: string | null; next_kept: boolean | null }[]>(
    `select (select seq from task_change_seqs where owner_id = ?::uuid) as head,
       (select at >= now() - make_interval(hours => ?) from task_changes where owner_id = ?::uuid and seq = ?) as next_kept`,
    [ownerId, retentionHours, ownerId, (after ?? 0) + 1],
  );
  const head = Number(row?.head ?? 0);
  if (after === null || after === head) return head;
  if (after > head || row?.next_kept !== true) throw resyncRequired();
  return after;
}

/**
 * Deletes changes past the retention, a batch at a time (oldest first, by the index on `at`); returns how many.
 * Any instance may run it; concurrent runs only share the work.
 */
export async function pruneChanges(em: EntityManager, retentionHours: number, batch = 5000): Promise<number> {
  let deleted = 0;
  for (;;) {
    const [row] = await em.execute<{ n: number }[]>(
      `with gone as (
         delete from task_changes where ctid = any(array(
           select ctid from task_changes where at < now() - make_interval(hours => ?) order by at limit ?))
         returning 1)
       select count(*)::int as n from gone`,
      [retentionHours, batch],
    );
    deleted += row!.n;
    if (row!.n < batch) return deleted;
  }
}

const CURSOR_TEXT = /^c:(0|[1-9]\d{0,15})$/;

/** Opaque to clients: base64url of the change's seq. */
export function encodeChangeCursor(seq: number): string {
  return Buffer.from(`c:${seq}`).toString('base64url');
}

/** The seq a cursor names; anything we did not issue is BAD_USER_INPUT on `after`. */
export function decodeChangeCursor(cursor: string): number {
  const invalid = () => badUserInput('after is not a cursor of this change feed', 'after');
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(cursor)) throw invalid();
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  // Only the encoding we issue: base64url ignores trailing bits, so `cursor + "x"` would decode alike.
  if (Buffer.from(text).toString('base64url') !== cursor) throw invalid();
  const match = CURSOR_TEXT.exec(text);
  const seq = match ? Number(match[1]) : NaN;
  if (!Number.isSafeInteger(seq)) throw invalid();
  return seq;
}
