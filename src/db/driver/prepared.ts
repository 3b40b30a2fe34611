import { createHash } from 'node:crypto';

/**
 * The statements every page and every new task run (the task list, its count, the insert) are sent with their
 * parameters apart from the text (`$1`, `$2`, …), so that one text serves every user and cursor. On a direct
 * connection each such text is prepared once per connection under a name, and PostgreSQL reuses its parse and
 * plan: for the page of tasks that was ~0.15 ms of PostgreSQL's CPU per request (on the same core as the server),
 * more than a third of its work.
 *
 * Behind a transaction-mode pooler (`DATABASE_DIRECT_URL` differs from `DATABASE_URL`) a statement prepared on one
 * server connection is missing on the next, so nothing is named there; and should a pooler sit behind a
 * `DATABASE_URL` nobody declared as one, the first sign of it (a named statement the server does not know, or
 * already knows) turns naming off for the process and the statement runs again unnamed.
 */

/** At most this many texts are named, the first ones run: each costs every connection a plan in PostgreSQL. */
export const MAX_NAMED = 100;

/** The named texts by the SQL they were made from, and their names by text. */
const texts = new Map<string, string>();
const names = new Map<string, string>();
let naming = true;

/**
 * `sql` with numbered placeholders, given a name (while there are names left) for connections to prepare it under.
 * The name is the text's hash, so that it means the same text in every instance and version: behind a pooler
 * nobody declared, a server connection may hold another instance's statement of that name.
 */
export function preparable(sql: string): string {
  const known = texts.get(sql);
  if (known !== undefined) return known;
  const text = numbered(sql);
  if (texts.size < MAX_NAMED) {
    texts.set(sql, text);
    if (!names.has(text)) names.set(text, `todo_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`);
  }
  return text;
}

/** The name a connection prepares `text` under: only texts made by `preparable`, and never once a pooler showed. */
export function statementName(text: string): string | undefined {
  return naming ? names.get(text) : undefined;
}

/** SQLSTATE of a named statement the server does not know (26000) or already has (42P05): a pooler in between. */
export function isPoolerMismatch(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '26000' || code === '42P05';
}

/** Whether naming was still on. */
export function stopNaming(): boolean {
  const was = naming;
  naming = false;
  return was;
}

/** MikroORM's `?` placeholders as PostgreSQL's `$1`, `$2`, …; a `?` inside a quoted literal stays. */
export function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/'(?:[^']|'')*'|\?/g, (match) => (match === '?' ? `$${++n}` : match));
}
