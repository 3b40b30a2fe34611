import { badUserInput } from '../../graphql/errors.js';
import type { TaskRecord } from './task.record.js';
import { TaskPriority } from './task.enums.js';
import { isStorableText } from '../text.js';
import { isStorableDate, isUuid, length, TITLE_MAX } from './task.rules.js';
import { TaskOrderField, type SortDirection, type TaskOrder } from './task.types.js';

/** Where a row sits in one ordering: the order key's value and the id that breaks ties. */
export interface CursorPosition {
  field: TaskOrderField;
  value: string | number | null;
  id: string;
}

export const PRIORITY_RANK: Record<TaskPriority, number> = {
  [TaskPriority.LOW]: 0,
  [TaskPriority.MEDIUM]: 1,
  [TaskPriority.HIGH]: 2,
  [TaskPriority.URGENT]: 3,
};

function keyOf(task: TaskRecord, field: TaskOrderField): CursorPosition['value'] {
  switch (field) {
    case TaskOrderField.CREATED_AT:
      return task.createdAt.toISOString();
    case TaskOrderField.UPDATED_AT:
      return task.updatedAt.toISOString();
    case TaskOrderField.DUE_DATE:
      return task.dueDate?.toISOString() ?? null;
    case TaskOrderField.PRIORITY:
      return PRIORITY_RANK[task.priority];
    case TaskOrderField.TITLE:
      return task.title;
  }
}

export function positionOf(task: TaskRecord, field: TaskOrderField): CursorPosition {
  return { field, value: keyOf(task, field), id: task.id };
}

/** Opaque to clients: base64url of the position and the direction it was read in. */
export function encodeCursor({ field, value, id }: CursorPosition, direction: SortDirection): string {
  return Buffer.from(JSON.stringify([field, direction, value, id])).toString('base64url');
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** A timestamp exactly as `toISOString` writes it (so never 31 February), within what PostgreSQL stores. */
function isTimestamp(value: unknown): value is string {
  if (typeof value !== 'string' || !ISO.test(value)) return false;
  const date = new Date(value);
  return isStorableDate(date) && date.toISOString() === value;
}

function validValue(field: TaskOrderField, value: unknown): value is CursorPosition['value'] {
  switch (field) {
    case TaskOrderField.CREATED_AT:
    case TaskOrderField.UPDATED_AT:
      return isTimestamp(value);
    case TaskOrderField.DUE_DATE:
      return value === null || isTimestamp(value);
    case TaskOrderField.PRIORITY:
      return typeof value === 'number' && Object.values(PRIORITY_RANK).includes(value);
    case TaskOrderField.TITLE:
      return typeof value === 'string' && length(value) <= TITLE_MAX && isStorableText(value);
  }
}

/** The position a cursor names, for the ordering and direction in use; anything else is BAD_USER_INPUT on `after`. */
export function decodeCursor(cursor: string, { field, direction }: TaskOrder): CursorPosition {
  const invalid = () => badUserInput('after is not a cursor of this list in this order', 'after');
  let decoded: unknown;
  try {
    if (!/^[A-Za-z0-9_-]{1,2000}$/.test(cursor)) throw invalid();
    const json = Buffer.from(cursor, 'base64url').toString('utf8');
    // Only the encoding we issue: base64url ignores trailing bits, so `cursor + "x"` would decode alike.
    if (Buffer.from(json).toString('base64url') !== cursor) throw invalid();
    decoded = JSON.parse(json);
  } catch {
    throw invalid();
  }
  if (!Array.isArray(decoded) || decoded.length !== 4) throw invalid();
  const [cursorField, cursorDirection, value, id] = decoded as unknown[];
  if (cursorField !== field || cursorDirection !== direction || typeof id !== 'string' || !isUuid(id) || !validValue(field, value))
    throw invalid();
  return { field, value, id };
}
