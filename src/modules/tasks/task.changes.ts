import type { EntityManager } from '@mikro-orm/postgresql';
import { badUserInput } from '../../graphql/errors.js';

export enum TaskChangeKind {
  CREATED = 'CREATED',
  UPDATED = 'UPDATED',
  DELETED = 'DELETED',
}

export interface TaskChange {
  seq: number;
  kind: TaskChangeKind;
  taskId: string;
  at: Date;
}

/**
 * Takes the owner's next seq and logs the change in one statement. The upsert locks the owner's counter row
 * until the transaction ends, so the owner's changes get their seqs in commit order: a reader "after n" can
 * never miss one that commits later with a smaller seq.
 */
const RECORD = `with head as (
  insert into task_change_seqs as h (owner_id, seq) values (?::uuid, 1)
  on conflict (owner_id) do update set seq = h.seq + 1
  returning seq
)
insert into task_changes (owner_id, seq, kind, task_id)
select ?::uuid, head.seq, ?, ?::uuid from head
returning seq`;

/** Logs a change in `em`'s transaction, so that it commits or rolls back with the task; returns its seq. */
export async function recordChange(em: EntityManager, ownerId: string, kind: TaskChangeKind, taskId: string): Promise<number> {
  if (!em.isInTransaction()) throw new Error('a task change must be recorded in the transaction that makes it');
  const [row] = await em.execute<{ seq: string }[]>(RECORD, [ownerId, ownerId, kind, taskId]);
  return Number(row!.seq);
}

/** The owner's changes after `seq`, in seq order (which is commit order), at most `limit` of them. */
export async function changesAfter(em: EntityManager, ownerId: string, seq: number, limit: number): Promise<TaskChange[]> {
  const rows = await em.execute<{ seq: string; kind: TaskChangeKind; task_id: string; at: number }[]>(
    `select seq, kind, task_id, (extract(epoch from at) * 1000)::float8 as at
     from task_changes where owner_id = ?::uuid and seq > ? order by seq limit ?`,
    [ownerId, seq, limit],
  );
  return rows.map((row) => ({ seq: Number(row.seq), kind: row.kind, taskId: row.task_id, at: new Date(row.at) }));
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
