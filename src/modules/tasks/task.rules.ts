import { badUserInput } from '../../graphql/errors.js';
import { storableText } from '../text.js';
import { TaskStatus } from './task.enums.js';

export const TITLE_MAX = 200;
export const DESCRIPTION_MAX = 10_000;
export const TAGS_MAX = 20;
export const TAG_MAX = 50;
export const SEARCH_MAX = 200;
export const PAGE_MAX = 100;

/** Characters as the rules count them: code points, not UTF-16 units (an emoji is one, not two). */
export const length = (text: string) => [...text].length;

export function normalizeTitle(raw: string): string {
  const title = storableText(raw, 'title').trim();
  if (title === '' || length(title) > TITLE_MAX) throw badUserInput(`The title must be 1 to ${TITLE_MAX} characters`, 'title');
  return title;
}

export function normalizeDescription(raw: string | null): string | null {
  if (raw === null) return null;
  if (length(storableText(raw, 'description')) > DESCRIPTION_MAX) {
    throw badUserInput(`The description must be at most ${DESCRIPTION_MAX} characters`, 'description');
  }
  return raw;
}

/** Tags are trimmed, lower-cased and de-duplicated, in the order first given. */
export function normalizeTags(raw: readonly string[], field = 'tags'): string[] {
  const tags = [...new Set(raw.map((tag) => storableText(tag, field).trim().toLowerCase()))];
  for (const tag of tags) {
    if (tag === '' || length(tag) > TAG_MAX) throw badUserInput(`Each tag must be 1 to ${TAG_MAX} characters`, field);
  }
  if (tags.length > TAGS_MAX) throw badUserInput(`A task has at most ${TAGS_MAX} tags`, field);
  return tags;
}

/** PostgreSQL stores 4713 BC to 294276 AD; dates are kept to years 1 to 9999, which every client can also write. */
export function isStorableDate(date: Date): boolean {
  const year = date.getUTCFullYear();
  return year >= 1 && year <= 9999;
}

export function checkDate<T extends Date | null | undefined>(date: T, field: string): T {
  if (date instanceof Date && !isStorableDate(date)) throw badUserInput('Dates must be within the years 1 to 9999', field);
  return date;
}

export function checkPageSize(first: number): number {
  if (!Number.isInteger(first) || first < 1 || first > PAGE_MAX) throw badUserInput(`first must be 1 to ${PAGE_MAX}`, 'first');
  return first;
}

export function normalizeSearch(raw: string): string {
  const search = storableText(raw, 'filter.search').trim();
  if (length(search) > SEARCH_MAX) throw badUserInput(`search must be at most ${SEARCH_MAX} characters`, 'filter.search');
  return search;
}

/** A LIKE pattern that matches `text` literally, wherever it appears. */
export function containsPattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether an id could be a task's: anything else cannot exist, and must not reach PostgreSQL's uuid parser. */
export function isUuid(id: string): boolean {
  return UUID.test(id);
}

/** A task is overdue when it has a due date in the past and is not completed. */
export function isOverdue(task: { dueDate: Date | null; status: TaskStatus }, now = Date.now()): boolean {
  return task.dueDate !== null && task.dueDate.getTime() < now && task.status !== TaskStatus.COMPLETED;
}
