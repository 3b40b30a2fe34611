import { epochMs, textArray } from '../../db/sql.js';
import { TaskStatus, type TaskPriority } from './task.enums.js';
import { checkDate, containsPattern, normalizeSearch, normalizeTags } from './task.rules.js';
import { SortDirection, TaskOrderField, type TaskFilter, type TaskOrder } from './task.types.js';
import { PRIORITY_RANK, type CursorPosition } from './task.cursor.js';

export interface Sql {
  sql: string;
  params: unknown[];
  /**
   * Plan it for its values on every run (never prepared under a name): a filter's best plan depends on how many of
   * the owner's tasks match it, which a generic plan cannot know (see repeatable).
   */
  planEachRun?: boolean;
}

/**
 * Each ordering's key, as SQL on a row (`expression`) and on a cursor's value (`param`). Every one is an index's
 * expression after the owner (Migration20261207100000_task_page_indexes), so a page is a range of that index.
 */
const ORDER_KEY: Record<TaskOrderField, { expression: string; param: string }> = {
  [TaskOrderField.CREATED_AT]: { expression: 't.created_at', param: '?::timestamptz' },
  [TaskOrderField.UPDATED_AT]: { expression: 't.updated_at', param: '?::timestamptz' },
  [TaskOrderField.DUE_DATE]: { expression: 't.due_date', param: '?::timestamptz' },
  [TaskOrderField.PRIORITY]: { expression: priorityRank('t.priority'), param: '?::int' },
  // Case-insensitive, then byte by byte: the same order on every server, whatever its locale.
  [TaskOrderField.TITLE]: { expression: `lower(t.title) collate "C"`, param: `lower(?::text) collate "C"` },
};

/** A priority's rank (LOW 0 to URGENT 3), as PRIORITY_RANK in task.cursor.ts. */
function priorityRank(column: string): string {
  return `(case ${column} when 'LOW' then 0 when 'MEDIUM' then 1 when 'HIGH' then 2 when 'URGENT' then 3 end)`;
}

/** The text a search looks in, as the trigram index has it: the title, then the description. */
const SEARCHED = `(t.title || ' ' || coalesce(t.description, ''))`;

/**
 * What a row can carry besides the id, as SQL. Tags as JSON: read by JSON.parse, where a text[] would go through
 * pg's character-by-character array parser. `owner` joins the user `u` and reads its id; the other `owner_`
 * columns come with it, each when its field is selected (never the password hash), as `ownerRecord` reads them.
 */
const COLUMNS = {
  version: 't.version',
  title: 't.title',
  description: 't.description',
  status: 't.status',
  priority: 't.priority',
  tags: 'to_json(t.tags) as tags',
  due_date: `${epochMs('t.due_date')} as due_date`,
  completed_at: `${epochMs('t.completed_at')} as completed_at`,
  created_at: `${epochMs('t.created_at')} as created_at`,
  updated_at: `${epochMs('t.updated_at')} as updated_at`,
  owner: 'u.id as owner_id',
  owner_email: 'u.email as owner_email',
  owner_name: 'u.name as owner_name',
  owner_created_at: `${epochMs('u.created_at')} as owner_created_at`,
  owner_updated_at: `${epochMs('u.updated_at')} as owner_updated_at`,
};
export type TaskColumn = keyof typeof COLUMNS;
export type TaskColumns = ReadonlySet<TaskColumn>;
/** Every column, in the order a select list names them. */
const COLUMN_ORDER = Object.keys(COLUMNS) as TaskColumn[];
export const ALL_COLUMNS: TaskColumns = new Set(COLUMN_ORDER);

/** The columns each field of a task's owner (User) reads, besides its id. */
export const OWNER_FIELD_COLUMNS: Record<string, readonly TaskColumn[]> = {
  id: [],
  email: ['owner_email'],
  name: ['owner_name'],
  createdAt: ['owner_created_at'],
  updatedAt: ['owner_updated_at'],
  __typename: [],
};
const EVERY_OWNER_COLUMN: readonly TaskColumn[] = ['owner', ...Object.values(OWNER_FIELD_COLUMNS).flat()];

/** Every column of the owner, for a read that does not follow a selection (the change feed's). */
export const OWNER_COLUMNS = EVERY_OWNER_COLUMN.map((column) => COLUMNS[column]).join(', ');

/**
 * The columns each field of Task reads (the id is always read); `owner` reads every column of the user unless
 * its own selection is known (see columnsFor). A field missing here reads every column.
 */
export const FIELD_COLUMNS: Record<string, readonly TaskColumn[]> = {
  id: [],
  version: ['version'],
  title: ['title'],
  description: ['description'],
  status: ['status'],
  priority: ['priority'],
  tags: ['tags'],
  dueDate: ['due_date'],
  completedAt: ['completed_at'],
  createdAt: ['created_at'],
  updatedAt: ['updated_at'],
  isOverdue: ['due_date', 'status'],
  owner: EVERY_OWNER_COLUMN,
  __typename: [],
};

/**
 * The columns read for these selected fields of Task and, when the owner is selected and its own fields are given,
 * for those of the owner. A field missing from the mappings reads every column (of the task, or of the owner).
 */
export function columnsFor(fields: Iterable<string>, ownerFields?: Iterable<string>): TaskColumns {
  const columns = new Set<TaskColumn>();
  for (const field of fields) {
    const read = field === 'owner' && ownerFields ? ownerColumns(ownerFields) : FIELD_COLUMNS[field];
    if (!read) return ALL_COLUMNS;
    for (const column of read) columns.add(column);
  }
  return columns;
}

function ownerColumns(fields: Iterable<string>): readonly TaskColumn[] {
  const columns: TaskColumn[] = ['owner'];
  for (const field of fields) {
    const read = OWNER_FIELD_COLUMNS[field];
    if (!read) return EVERY_OWNER_COLUMN;
    columns.push(...read);
  }
  return columns;
}

/** The texts `selectFrom` made, by table and by the bits of the columns read (at most 2^15 per table). */
const selectTexts = new Map<string, string[]>();
/** The bits of the columns that need the user joined. */
const OWNER_BITS = EVERY_OWNER_COLUMN.reduce((bits, column) => bits | (1 << COLUMN_ORDER.indexOf(column)), 0);

/**
 * The select list and the tables for `columns` (and `alsoRead`) of the rows of `tasks` (a table or a CTE named t),
 * the columns always in the same order, so that one set makes one text; each text is made once.
 */
function selectFrom(columns: TaskColumns, tasks = 'tasks t', alsoRead?: TaskColumn): string {
  let bits = 0;
  for (let i = 0; i < COLUMN_ORDER.length; i++) {
    if (columns.has(COLUMN_ORDER[i]!) || COLUMN_ORDER[i] === alsoRead) bits |= 1 << i;
  }
  let texts = selectTexts.get(tasks);
  if (!texts) selectTexts.set(tasks, (texts = []));
  return (texts[bits] ??=
    `select ${['t.id', ...COLUMN_ORDER.filter((_, i) => bits & (1 << i)).map((column) => COLUMNS[column])].join(', ')}\nfrom ${tasks}${bits & OWNER_BITS ? ' join users u on u.id = t.owner_id' : ''}`);
}

/** The column a cursor of each order reads. */
const ORDER_COLUMN: Record<TaskOrderField, TaskColumn> = {
  [TaskOrderField.CREATED_AT]: 'created_at',
  [TaskOrderField.UPDATED_AT]: 'updated_at',
  [TaskOrderField.DUE_DATE]: 'due_date',
  [TaskOrderField.PRIORITY]: 'priority',
  [TaskOrderField.TITLE]: 'title',
};

export const DEFAULT_ORDER: TaskOrder = { field: TaskOrderField.CREATED_AT, direction: SortDirection.DESC };

/**
 * The owner condition first, then the filter's: a filter can only narrow what the owner sees. The tag and search
 * conditions are `selective` (served by GIN indexes, or not at all when `opaque`: see listQuery).
 */
export function whereClause(ownerId: string, filter: TaskFilter | null | undefined, opaque = false): Sql & { selective: boolean } {
  const conditions = ['t.owner_id = ?::uuid'];
  const params: unknown[] = [ownerId];
  let selective = false;
  const add = (condition: string, ...values: unknown[]) => {
    conditions.push(condition);
    params.push(...values);
  };
  // No index can serve a CASE, nor can the planner estimate it as rare: it reads the ordering's index and filters.
  const addSelective = (condition: string, value: unknown) => {
    selective = true;
    add(opaque ? `(case when ${condition} then true end)` : condition, value);
  };
  if (filter?.status) add('t.status = any(?::text[])', textArray(filter.status));
  // By rank, so that the priority ordering's index serves the filter too.
  if (filter?.priority) add(`${priorityRank('t.priority')} = any(?::int[])`, `{${filter.priority.map((p) => PRIORITY_RANK[p]).join(',')}}`);
  if (filter?.tagsAny) addSelective('t.tags && ?::text[]', textArray(normalizeTags(filter.tagsAny, 'filter.tagsAny')));
  if (filter?.tagsAll) addSelective('t.tags @> ?::text[]', textArray(normalizeTags(filter.tagsAll, 'filter.tagsAll')));
  // The literal status, so that the index of open tasks by due date serves it (its predicate must be implied).
  if (filter?.overdue === true) add(`(t.due_date < now() and t.status <> '${TaskStatus.COMPLETED}')`);
  if (filter?.overdue === false) add(`not coalesce(t.due_date < now() and t.status <> '${TaskStatus.COMPLETED}', false)`);
  if (filter?.dueBefore) add('t.due_date < ?::timestamptz', checkDate(filter.dueBefore, 'filter.dueBefore').toISOString());
  if (filter?.dueAfter) add('t.due_date > ?::timestamptz', checkDate(filter.dueAfter, 'filter.dueAfter').toISOString());
  if (typeof filter?.search === 'string') addSelective(`${SEARCHED} ilike ? escape '\\'`, containsPattern(normalizeSearch(filter.search)));
  return { sql: conditions.join('\n  and '), params, planEachRun: conditions.length > 1, selective };
}

/** Rows strictly after `after` in the order (for DUE_DATE, among the dated tasks). */
function keysetCondition(order: TaskOrder, after: CursorPosition): Sql {
  const { expression, param } = ORDER_KEY[order.field];
  const op = order.direction === SortDirection.ASC ? '>' : '<';
  return { sql: `((${expression}, t.id) ${op} (${param}, ?::uuid))`, params: [after.value, after.id] };
}

/**
 * A page of the owner's tasks: the columns asked for, and what the order's cursors read. Each is one range of the
 * ordering's index. DUE_DATE puts tasks without a due date last in either direction: its page is the dated tasks'
 * range, then the undated ones' (by id), each cut at the page size, put in order again by the outer query.
 */
export function listQuery(
  ownerId: string,
  filter: TaskFilter | null | undefined,
  order: TaskOrder,
  after: CursorPosition | null,
  limit: number,
  columns: TaskColumns = ALL_COLUMNS,
): Sql {
  const where = whereClause(ownerId, filter);
  if (!where.selective) return pageQuery(where, filter, order, after, limit, columns);
  // Tags and search: a GIN index finds few matches at the cost of each, but many matches cost more than reading
  // the ordering's index until a page is found, and the planner cannot tell which it faces (tags go together, and
  // trigram estimates are rough). A probe counts up to SELECTIVE_PROBE matches, and only one of the two pages runs.
  const indexed = pageQuery(where, filter, order, after, limit, columns);
  const scanned = pageQuery(whereClause(ownerId, filter, true), filter, order, after, limit, columns);
  return {
    sql: [
      `with probe as (select count(*) as n from (select 1 from tasks t where ${where.sql} limit ${SELECTIVE_PROBE}) m)`,
      `select * from (${indexed.sql}) few where (select n from probe) < ${SELECTIVE_PROBE}`,
      'union all',
      `select * from (${scanned.sql}) many where (select n from probe) >= ${SELECTIVE_PROBE}`,
    ].join('\n'),
    params: [...where.params, ...indexed.params, ...scanned.params],
    planEachRun: true,
  };
}

/** Matches of a tag or search filter up to which a page is found through their GIN index (see listQuery). */
const SELECTIVE_PROBE = 200;

/** The page for `where`, in one range of the ordering's index (two for DUE_DATE). */
function pageQuery(
  where: Sql,
  filter: TaskFilter | null | undefined,
  order: TaskOrder,
  after: CursorPosition | null,
  limit: number,
  columns: TaskColumns,
): Sql {
  const direction = order.direction === SortDirection.ASC ? 'asc' : 'desc';
  const op = order.direction === SortDirection.ASC ? '>' : '<';
  const select = selectFrom(columns, 'tasks t', ORDER_COLUMN[order.field]);
  // In the text, not a parameter: PostgreSQL costs a generic plan's `limit $n` at a tenth of the rows, so a
  // prepared page (prepared.ts) would be planned afresh on every run. A page size is one of a hundred integers.
  const page = (conditions: Sql[], orderBy: string): Sql => ({
    sql: [
      select,
      `where ${[where, ...conditions].map((c) => c.sql).join('\n  and ')}`,
      `order by ${orderBy}`,
      `limit ${integer(limit)}`,
    ].join('\n'),
    params: [where, ...conditions].flatMap((c) => c.params),
    planEachRun: where.planEachRun,
  });
  if (order.field !== TaskOrderField.DUE_DATE) {
    const { expression } = ORDER_KEY[order.field];
    return page(after ? [keysetCondition(order, after)] : [], `${expression} ${direction}, t.id ${direction}`);
  }
  // Ordered by the due date too (all NULL): the index's order, which `is null` alone does not tell the planner.
  const undated = page(
    [{ sql: 't.due_date is null', params: [] }, ...(after?.value === null ? [{ sql: `t.id ${op} ?::uuid`, params: [after.id] }] : [])],
    `t.due_date ${direction}, t.id ${direction}`,
  );
  if (after?.value === null) return undated;
  const dated = page(
    [{ sql: 't.due_date is not null', params: [] }, ...(after ? [keysetCondition(order, after)] : [])],
    `t.due_date ${direction}, t.id ${direction}`,
  );
  // A filter on the due date leaves no undated task to read.
  if (filter?.dueBefore || filter?.dueAfter || filter?.overdue === true) return dated;
  return {
    sql: `select * from ((${dated.sql})\nunion all\n(${undated.sql})) p\norder by p.due_date is null, p.due_date ${direction}, p.id ${direction}\nlimit ${integer(limit)}`,
    params: [...dated.params, ...undated.params],
    planEachRun: where.planEachRun,
  };
}

function integer(n: number): number {
  if (!Number.isSafeInteger(n)) throw new Error(`not an integer: ${n}`);
  return n;
}

/**
 * The page and the snapshot it is read in, from one statement: a row of the snapshot, then the page's rows in their
 * order (a lateral join to one row is a nested loop, which keeps the inner order), or a row with a null id when the
 * page is empty. See TaskConnection.changesCursor.
 */
export function withSnapshot(page: Sql): Sql {
  return {
    ...page,
    sql: `select s.snapshot, p.*\nfrom (select pg_current_snapshot()::text as snapshot) s\nleft join lateral (\n${page.sql}\n) p on true`,
  };
}

export function countQuery(ownerId: string, filter: TaskFilter | null | undefined): Sql {
  const where = whereClause(ownerId, filter);
  return { sql: `select count(*)::int as total from tasks t\nwhere ${where.sql}`, params: where.params, planEachRun: where.planEachRun };
}

/** A new task's columns, as TaskService.create settled them. */
export interface NewTask {
  id: string;
  title: string;
  description: string | null;
  status: TaskStatus;
  priority: TaskPriority;
  tags: readonly string[];
  dueDate: Date | null;
  completedAt: Date | null;
  createdAt: Date;
  ownerId: string;
}

/**
 * Inserts the task and answers its `columns`, in one statement (its own transaction; the change log's trigger
 * writes in it too). Safe to run again: a second run of the same id inserts nothing and answers no row, and the
 * caller reads the row by `taskQuery` instead.
 */
export function insertQuery(task: NewTask, columns: TaskColumns = ALL_COLUMNS): Sql {
  const createdAt = task.createdAt.toISOString();
  return {
    sql: [
      'with t as (',
      '  insert into tasks (id, created_at, updated_at, title, description, status, priority, tags, due_date, completed_at, owner_id)',
      '  values (?::uuid, ?::timestamptz, ?::timestamptz, ?, ?, ?, ?, ?::text[], ?::timestamptz, ?::timestamptz, ?::uuid)',
      '  on conflict (id) do nothing',
      '  returning *',
      ')',
      selectFrom(columns, 't'),
    ].join('\n'),
    params: [
      task.id,
      createdAt,
      createdAt,
      task.title,
      task.description,
      task.status,
      task.priority,
      textArray(task.tags),
      task.dueDate?.toISOString() ?? null,
      task.completedAt?.toISOString() ?? null,
      task.ownerId,
    ],
  };
}

/** One of the owner's tasks, its `columns` as a page reads them. */
export function taskQuery(ownerId: string, id: string, columns: TaskColumns = ALL_COLUMNS): Sql {
  return {
    sql: `${selectFrom(columns)}\nwhere t.owner_id = ?::uuid and t.id = ?::uuid`,
    params: [ownerId, id],
  };
}
