import type { User } from '../users/user.entity.js';
import type { Task } from './task.entity.js';
import type { TaskPriority, TaskStatus } from './task.enums.js';
import { isOverdue } from './task.rules.js';

/**
 * What the GraphQL Task type reads: a plain record, made from a row of the task SQL (task.sql.ts) or from an entity
 * a mutation changed. Every field is a property, so that no field of a task has a resolver to call: a page of 20
 * tasks called two per row, ~15 KB of allocation and the resolvers' bookkeeping per request.
 */
export type TaskRecord = Pick<
  Task,
  | 'id'
  | 'version'
  | 'title'
  | 'description'
  | 'status'
  | 'priority'
  | 'tags'
  | 'dueDate'
  | 'completedAt'
  | 'createdAt'
  | 'updatedAt'
  | 'isOverdue'
> & {
  /** The whole user when the client selected the owner; otherwise only its id, which nobody reads. */
  owner: OwnerRecord | { id: string };
};

export type OwnerRecord = Pick<User, 'id' | 'email' | 'name' | 'createdAt' | 'updatedAt'>;

/** A row of the task SQL (task.sql.ts); a page's rows carry only the columns its selection reads, besides the id. */
export interface TaskRow {
  id: string;
  version: number;
  title: string;
  description: string | null;
  status: TaskStatus;
  priority: TaskPriority;
  tags: string[];
  /** Timestamps arrive as epoch milliseconds (see the list query). */
  due_date: number | null;
  completed_at: number | null;
  created_at: number;
  updated_at: number;
  owner_id: string;
  owner_email: string;
  owner_name: string | null;
  owner_created_at: number;
  owner_updated_at: number;
}

/** Null also for a column the row does not carry: a field the client did not select, which nobody reads. */
const date = (ms: number | null | undefined) => (ms == null ? null : new Date(ms));

/** The owner a row was joined with; a column the row does not carry (a field not selected) reads as null. */
export function ownerRecord(row: TaskRow): OwnerRecord {
  return {
    id: row.owner_id,
    email: row.owner_email,
    name: row.owner_name ?? null,
    createdAt: date(row.owner_created_at)!,
    updatedAt: date(row.owner_updated_at)!,
  };
}

/**
 * A row as a record; the rows of one page share their owner's record (every row of a page is the viewer's), or a
 * reference to the owner when the page did not read the user.
 */
export function taskRecord(row: TaskRow, owner: TaskRecord['owner'] = ownerRecord(row)): TaskRecord {
  const dueDate = date(row.due_date);
  return {
    id: row.id,
    version: row.version,
    title: row.title,
    description: row.description,
    status: row.status,
    priority: row.priority,
    tags: row.tags,
    dueDate,
    completedAt: date(row.completed_at),
    createdAt: date(row.created_at)!,
    updatedAt: date(row.updated_at)!,
    isOverdue: isOverdue({ dueDate, status: row.status }),
    owner,
  };
}

/** A task a mutation changed, as a record; its owner as `owner` gives it, its version as the database now has it. */
export function recordOf(task: Task, owner: TaskRecord['owner'], version = task.version): TaskRecord {
  const { id, title, description, status, priority, tags, dueDate, completedAt, createdAt, updatedAt, isOverdue } = task;
  return { id, version, title, description, status, priority, tags, dueDate, completedAt, createdAt, updatedAt, isOverdue, owner };
}
