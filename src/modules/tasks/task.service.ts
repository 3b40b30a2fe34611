import { randomUUID } from 'node:crypto';
import { LockMode, type EntityManager } from '@mikro-orm/postgresql';
import { isForeignKeyViolation } from '../../db/driver/db-errors.js';
import { repeatable } from '../../db/driver/resilient-driver.js';
import { notFound, badUserInput, conflict, staleVersion } from '../../graphql/errors.js';
import { invalidToken } from '../../graphql/viewer.js';
import { Task } from './task.entity.js';
import { TaskPriority, TaskStatus } from './task.enums.js';
import { decodeCursor, encodeCursor, positionOf } from './task.cursor.js';
import {
  ALL_COLUMNS,
  countQuery,
  DEFAULT_ORDER,
  insertQuery,
  listQuery,
  taskQuery,
  withSnapshot,
  type NewTask,
  type TaskColumns,
} from './task.sql.js';
import { encodeChangeCursor, parseSnapshot } from './change-position.js';
import { checkDate, checkPageSize, isUuid, normalizeDescription, normalizeTags, normalizeTitle } from './task.rules.js';
import { ownerRecord, recordOf, taskRecord, type TaskRecord, type TaskRow } from './task.record.js';
import { User } from '../users/user.entity.js';
import type { CreateTaskInput, TaskConnection, TaskFilter, TaskOrder, UpdateTaskInput } from './task.types.js';

export interface ListArgs {
  filter?: TaskFilter | null;
  orderBy?: TaskOrder | null;
  first: number;
  after?: string | null;
  /** What the client reads of each task; every column when not said. */
  columns?: TaskColumns;
  /** Whether the client reads `changesCursor` (the page is then read with its snapshot). */
  changesCursor?: boolean;
}

/** The first key of the advisory locks writers of one task queue on ("task" in ASCII). */
const TASK_WRITERS_LOCK = 0x7461736b;

/** `completedAt` follows the status: set when a task becomes COMPLETED, cleared when it leaves it. */
function setStatus(task: Pick<Task, 'status' | 'completedAt'>, status: TaskStatus, now = new Date()): void {
  if (status === TaskStatus.COMPLETED && task.status !== TaskStatus.COMPLETED) task.completedAt = now;
  if (status !== TaskStatus.COMPLETED) task.completedAt = null;
  task.status = status;
}

function refuseNull(input: UpdateTaskInput, field: 'title' | 'status' | 'priority' | 'tags'): void {
  if (input[field] === null) throw badUserInput(`${field} cannot be null`, field);
}

/** What a change of the task compares: when none of it differs, nothing is written and the version stays. */
const stateOf = (task: Task) =>
  JSON.stringify([
    task.title,
    task.description,
    task.status,
    task.priority,
    task.tags,
    task.dueDate?.getTime(),
    task.completedAt?.getTime(),
  ]);

/** One user's tasks. Every query starts from the owner, so another user's task is indistinguishable from none. */
export class TaskService {
  constructor(
    private readonly em: EntityManager,
    private readonly ownerId: string,
  ) {}

  async find(id: string, columns: TaskColumns = ALL_COLUMNS): Promise<TaskRecord | null> {
    if (!isUuid(id)) return null;
    const [row] = await repeatable<TaskRow>(this.em, taskQuery(this.ownerId, id, columns));
    return row ? taskRecord(row, this.#ownerOf(row, columns)) : null;
  }

  /**
   * The task to change, locked until the transaction ends: a concurrent change waits and then reads the row as
   * committed, so that every write starts from the current row (`completedAt` always follows `status`).
   *
   * Writers of one task first queue on an advisory lock of its id, which they take before they have a
   * transaction id: the change log orders changes by transaction id (task.changes.ts), and a writer that
   * waited on the row lock itself may already have been given one (PostgreSQL assigns it to lock a row that an
   * open transaction has updated), which would order its change before the one it waited for.
   */
  async get(id: string, expectedVersion?: number | null): Promise<Task> {
    if (!isUuid(id)) throw notFound('No such task');
    await this.em.execute('select pg_advisory_xact_lock(?, hashtext(?))', [TASK_WRITERS_LOCK, id]);
    const task = await this.em.findOne(Task, { id, owner: this.ownerId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!task) throw notFound('No such task');
    // Read under the lock: the version no other writer can change before this one commits or rolls back.
    if (expectedVersion != null && task.version !== expectedVersion) throw staleVersion(task.version);
    return task;
  }

  /**
   * One statement, which PostgreSQL commits or rolls back on its own: a new task needs no lock and no prior read,
   * so a transaction around it would only add BEGIN and COMMIT. The id is chosen before it runs, here or by the
   * client, which makes the statement safe to repeat: a transient failure runs it again (`repeatable`), and a
   * client retries after a lost answer; when a run finds the id taken it inserts nothing and the task is read back
   * as it is now. Nothing is written twice. An id that is taken by another user's task is CONFLICT, and says
   * nothing more of it.
   */
  async create(input: CreateTaskInput, columns: TaskColumns = ALL_COLUMNS): Promise<TaskRecord> {
    if (input.id != null && !isUuid(input.id)) throw badUserInput('id must be a UUID', 'id');
    const createdAt = new Date();
    const task: NewTask = {
      id: input.id?.toLowerCase() ?? randomUUID(),
      title: normalizeTitle(input.title),
      description: normalizeDescription(input.description ?? null),
      status: TaskStatus.PENDING,
      priority: input.priority ?? TaskPriority.MEDIUM,
      tags: normalizeTags(input.tags ?? []),
      dueDate: checkDate(input.dueDate ?? null, 'dueDate'),
      completedAt: null,
      createdAt,
      ownerId: this.ownerId,
    };
    setStatus(task, input.status ?? TaskStatus.PENDING, createdAt);
    // A valid token whose user is gone (its account deleted since) owns nothing: it is refused as any invalid token is.
    const inserted = await repeatable<TaskRow>(this.em, insertQuery(task, columns)).catch((error: unknown) => {
      throw isForeignKeyViolation(error) ? invalidToken() : error;
    });
    const [row] = inserted.length > 0 ? inserted : await repeatable<TaskRow>(this.em, taskQuery(this.ownerId, task.id, columns));
    if (!row && input.id != null) throw conflict('This id is taken: choose another');
    if (!row) throw new Error(`task ${task.id} was inserted but cannot be read back`);
    return taskRecord(row, this.#ownerOf(row, columns));
  }

  /** Every rule is checked before anything changes; an absent field is left alone, null clears the nullable ones. */
  async update(
    id: string,
    input: UpdateTaskInput,
    expectedVersion?: number | null,
    columns: TaskColumns = ALL_COLUMNS,
  ): Promise<TaskRecord> {
    for (const field of ['title', 'status', 'priority', 'tags'] as const) refuseNull(input, field);
    const title = input.title === undefined ? undefined : normalizeTitle(input.title!);
    const description = input.description === undefined ? undefined : normalizeDescription(input.description);
    const tags = input.tags ? normalizeTags(input.tags) : undefined;
    checkDate(input.dueDate, 'dueDate');
    const task = await this.get(id, expectedVersion);
    const before = stateOf(task);
    if (title !== undefined) task.title = title;
    if (description !== undefined) task.description = description;
    if (tags !== undefined) task.tags = tags;
    if (input.priority) task.priority = input.priority;
    if (input.dueDate !== undefined) task.dueDate = input.dueDate;
    if (input.status) setStatus(task, input.status);
    return this.#write(task, before, columns);
  }

  async complete(id: string, expectedVersion?: number | null, columns: TaskColumns = ALL_COLUMNS): Promise<TaskRecord> {
    const task = await this.get(id, expectedVersion);
    const before = stateOf(task);
    setStatus(task, TaskStatus.COMPLETED);
    return this.#write(task, before, columns);
  }

  /**
   * Writes what changed, and answers the task as a record, with the owner loaded only if the client reads it. The
   * database moves the version on with the write (a trigger); the entity keeps the one it read, so that the ORM
   * never writes it back.
   */
  async #write(task: Task, before: string, columns: TaskColumns): Promise<TaskRecord> {
    const written = stateOf(task) !== before;
    await this.em.flush();
    const owner = columns.has('owner') ? await this.em.findOneOrFail(User, this.ownerId) : { id: this.ownerId };
    return recordOf(task, owner, written ? task.version + 1 : task.version);
  }

  async delete(id: string, expectedVersion?: number | null): Promise<string> {
    const task = await this.get(id, expectedVersion);
    this.em.remove(task);
    await this.em.flush();
    return task.id;
  }

  /** The owner a row carries when its columns include the user, else a reference to the viewer, whose it is. */
  #ownerOf(row: TaskRow, columns: TaskColumns): TaskRecord['owner'] {
    return columns.has('owner') ? ownerRecord(row) : { id: this.ownerId };
  }

  /** A page in keyset order; the total is a separate query, run only if asked for. */
  async list({ filter, orderBy, first, after, columns = ALL_COLUMNS, changesCursor = true }: ListArgs): Promise<TaskConnection> {
    const order = orderBy ?? DEFAULT_ORDER;
    const limit = checkPageSize(first);
    const position = after ? decodeCursor(after, order) : null;
    const page = listQuery(this.ownerId, filter, order, position, limit + 1, columns);
    const counting = countQuery(this.ownerId, filter);
    let rows = await repeatable<TaskRow & { snapshot?: string }>(this.em, changesCursor ? withSnapshot(page) : page);
    const snapshot = rows[0]?.snapshot;
    if (changesCursor) rows = rows.filter((row) => row.id !== null);
    const owner = rows[0] && this.#ownerOf(rows[0], columns);
    const edges = rows.slice(0, limit).map((row) => new Edge(taskRecord(row, owner), order));
    return {
      edges,
      pageInfo: new PageInfo(edges, rows.length > limit, position !== null),
      changesCursor: snapshot === undefined ? '' : encodeChangeCursor(parseSnapshot(snapshot)),
      countTotal: async () => {
        const [row] = await repeatable<{ total: number }>(this.em, counting);
        return row!.total;
      },
    };
  }
}

/**
 * A page's info, whose cursors are encoded only if the client selects them. A class rather than an object literal
 * with getters: each literal's getters were new functions that V8 kept reachable past the request, and with them
 * the whole page, until its next full collection (docs/performance.md, "Page info as a class instance").
 */
class PageInfo {
  constructor(
    private readonly edges: Edge[],
    readonly hasNextPage: boolean,
    readonly hasPreviousPage: boolean,
  ) {}

  get startCursor(): string | null {
    return this.edges[0]?.cursor ?? null;
  }

  get endCursor(): string | null {
    return this.edges.at(-1)?.cursor ?? null;
  }
}

/** An edge of a page, whose cursor is encoded only if the client selects it (most pages never read one). */
class Edge {
  constructor(
    readonly node: TaskRecord,
    private readonly order: TaskOrder,
  ) {}

  get cursor(): string {
    return encodeCursor(positionOf(this.node, this.order.field), this.order.direction);
  }
}
