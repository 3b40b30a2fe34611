import { Arg, Args, Ctx, FieldResolver, ID, Info, Int, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { FieldNode, GraphQLResolveInfo } from 'graphql';
import { selectedFields } from '../../graphql/selection.js';
import type { Context } from '../../graphql/context.js';
import { inTransaction } from '../../db/transaction.js';
import { Cost } from '../../guards/cost.js';
import { requireUserId } from '../../graphql/viewer.js';
import { Task } from './task.entity.js';
import type { TaskRecord } from './task.record.js';
import { TaskService } from './task.service.js';
import { columnsFor, type TaskColumns } from './task.sql.js';
import { PAGE_MAX } from './task.rules.js';
import { CreateTaskInput, EXPECTED_VERSION, TaskConnection, TasksArgs, UpdateTaskArgs } from './task.types.js';

const tasksOf = (context: Context) => new TaskService(context.em, requireUserId(context));

/** A write by the viewer, which once committed (and logged by the database, see task.changes.ts) is announced to subscribers. */
async function announced<T>(context: Context, write: (owner: string) => Promise<T>): Promise<T> {
  const owner = requireUserId(context);
  const result = await write(owner);
  context.services.feed.committed(owner);
  return result;
}

/** A mutation is one unit of work: its writes commit together or not at all (see inTransaction). */
const mutate = <T>(context: Context, work: (tasks: TaskService) => Promise<T>): Promise<T> =>
  announced(context, (owner) => inTransaction(context.em, (em) => work(new TaskService(em, owner))));

/**
 * What a field's selection tells (`compute`), remembered by its node: the same for every run of one parsed
 * document. Only a field that is its own selection is remembered; fields merged from several nodes (the same
 * response key selected twice) are worked out each time, as a node may be merged with others in another operation
 * of the document.
 */
function perNode<T>(cache: WeakMap<FieldNode, T>, info: GraphQLResolveInfo, compute: () => T): T {
  const single = info.fieldNodes.length === 1 ? info.fieldNodes[0]! : undefined;
  const known = single ? cache.get(single) : undefined;
  if (known !== undefined) return known;
  const value = compute();
  if (single) cache.set(single, value);
  return value;
}

const columnsByField = new WeakMap<FieldNode, TaskColumns>();

/** What the field reads of each task: what the client selected of the tasks at `path` below it (see selectedFields). */
function columnsOf(info: GraphQLResolveInfo, path: readonly string[]): TaskColumns {
  return perNode(columnsByField, info, () => columnsFor(selectedFields(info, path), selectedFields(info, [...path, 'owner'])));
}

const changesCursorByField = new WeakMap<FieldNode, boolean>();

/** Whether the client selected `changesCursor` of the connection. */
function readsChangesCursor(info: GraphQLResolveInfo): boolean {
  return perNode(changesCursorByField, info, () => selectedFields(info, []).has('changesCursor'));
}

@Resolver(() => Task)
export class TaskResolver {
  @Cost({ sql: 1 })
  @Query(() => Task, { nullable: true, description: 'Null when it does not exist or belongs to someone else' })
  task(
    @Arg('id', () => ID, { description: 'The task’s id' }) id: string,
    @Ctx() context: Context,
    @Info() info: GraphQLResolveInfo,
  ): Promise<TaskRecord | null> {
    return tasksOf(context).find(id, columnsOf(info, []));
  }

  @Cost({ sql: 1, page: { arg: 'first', max: PAGE_MAX } })
  @Query(() => TaskConnection, {
    description: 'A page of the signed-in user’s tasks, by keyset: pass pageInfo.endCursor as after. UNAUTHENTICATED without a token',
  })
  tasks(@Args(() => TasksArgs) args: TasksArgs, @Ctx() context: Context, @Info() info: GraphQLResolveInfo): Promise<TaskConnection> {
    return tasksOf(context).list({ ...args, columns: columnsOf(info, ['edges', 'node']), changesCursor: readsChangesCursor(info) });
  }

  @Cost({ sql: 1 })
  @Mutation(() => Task, {
    description:
      'Creates a task of the signed-in user. Errors: BAD_USER_INPUT (with field), CONFLICT (an id of another user’s task), UNAUTHENTICATED',
  })
  createTask(
    @Arg('input', () => CreateTaskInput, { description: 'The new task' }) input: CreateTaskInput,
    @Ctx() context: Context,
    @Info() info: GraphQLResolveInfo,
  ): Promise<TaskRecord> {
    // One statement, which PostgreSQL commits on its own: no transaction around it (see TaskService.create).
    return announced(context, (owner) => new TaskService(context.em, owner).create(input, columnsOf(info, [])));
  }

  @Cost({ sql: 5 })
  @Mutation(() => Task, {
    description:
      'Changes a task and answers it as committed. Errors: BAD_USER_INPUT (with field), NOT_FOUND, CONFLICT (stale expectedVersion), UNAUTHENTICATED',
  })
  updateTask(
    @Args(() => UpdateTaskArgs) { id, input, expectedVersion }: UpdateTaskArgs,
    @Ctx() context: Context,
    @Info() info: GraphQLResolveInfo,
  ): Promise<TaskRecord> {
    return mutate(context, (tasks) => tasks.update(id, input, expectedVersion, columnsOf(info, [])));
  }

  @Cost({ sql: 5 })
  @Mutation(() => Task, {
    description: 'Sets the status to COMPLETED (and completedAt). Errors: NOT_FOUND, CONFLICT (stale expectedVersion), UNAUTHENTICATED',
  })
  completeTask(
    @Arg('id', () => ID, { description: 'The task; not the caller’s: NOT_FOUND' }) id: string,
    @Arg('expectedVersion', () => Int, { nullable: true, description: EXPECTED_VERSION }) expectedVersion: number | null,
    @Ctx() context: Context,
    @Info() info: GraphQLResolveInfo,
  ): Promise<TaskRecord> {
    return mutate(context, (tasks) => tasks.complete(id, expectedVersion, columnsOf(info, [])));
  }

  @Cost({ sql: 5 })
  @Mutation(() => ID, {
    description: 'Deletes a task; answers the id that was deleted. Errors: NOT_FOUND, CONFLICT (stale expectedVersion), UNAUTHENTICATED',
  })
  deleteTask(
    @Arg('id', () => ID, { description: 'The task; not the caller’s: NOT_FOUND' }) id: string,
    @Arg('expectedVersion', () => Int, { nullable: true, description: EXPECTED_VERSION }) expectedVersion: number | null,
    @Ctx() context: Context,
  ): Promise<string> {
    return mutate(context, (tasks) => tasks.delete(id, expectedVersion));
  }
}

@Resolver(() => TaskConnection)
export class TaskConnectionResolver {
  @Cost({ sql: 1 })
  @FieldResolver(() => Int, { description: 'Every match of the filter, counted only when asked for' })
  totalCount(@Root() connection: TaskConnection): Promise<number> {
    return connection.countTotal();
  }
}
