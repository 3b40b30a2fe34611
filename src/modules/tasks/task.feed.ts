import { Arg, Ctx, Field, ID, ObjectType, Resolver, Root, Subscription } from 'type-graphql';
import type { Context } from '../../graphql/context.js';
import { requireUserId } from '../../graphql/viewer.js';
import { Cost } from '../../guards/cost.js';
import type { FeedItem } from './change-feed.js';
import { Task } from './task.entity.js';
import { decodeChangeCursor, encodeChangeCursor } from './change-position.js';
import { TaskChangeKind } from './task.changes.js';
import type { TaskRecord } from './task.record.js';
import { registerEnumType } from 'type-graphql';

registerEnumType(TaskChangeKind, {
  name: 'TaskChangeKind',
  description: 'What a change did to a task',
  valuesConfig: {
    CREATED: { description: 'The task was created' },
    UPDATED: { description: 'The task changed, completion included' },
    DELETED: { description: 'The task was deleted: task is null' },
  },
});

@ObjectType('TaskChange', { simpleResolvers: true, description: 'One committed change of one of the user’s tasks' })
export class TaskChangeEvent {
  @Field({ description: 'Resume point: pass it as `after` to continue right after this change' })
  cursor!: string;

  @Field(() => TaskChangeKind, { description: 'CREATED, UPDATED or DELETED' })
  kind!: TaskChangeKind;

  @Field(() => ID, { description: 'The task it changed' })
  taskId!: string;

  @Field(() => Task, { nullable: true, description: 'The task as committed by this change; null when DELETED' })
  task!: TaskRecord | null;

  @Field({ description: 'Commit time' })
  at!: Date;
}

/** Opens the signed-in user's feed; the transports put the subscriber's token expiry in the context. */
function openFeed(context: Context, after: string | null | undefined) {
  const userId = requireUserId(context);
  const { feed } = context.services;
  if (!context.subscriber) throw new Error('taskChanges is served by the subscription transports only');
  return feed.open({ userId, after: after == null ? null : decodeChangeCursor(after), ...context.subscriber });
}

@Resolver()
export class TaskFeedResolver {
  @Cost({ sql: 2 })
  @Subscription(() => TaskChangeEvent, {
    description:
      'Every committed change of the signed-in user’s own tasks, each exactly once, and the changes of each task in ' +
      'the order they committed (changes to different tasks may arrive in another order). With `after`: ' +
      'first the changes after that cursor, then live ones, with no gap and no duplicate.',
    subscribe: ({ args, context }) => openFeed(context as Context, (args as { after?: string | null }).after),
  })
  taskChanges(
    @Root() item: FeedItem,
    // Read by the subscribe function above; declared here for the schema.
    @Arg('after', () => String, {
      nullable: true,
      description:
        'A cursor: an event’s, or a list’s changesCursor. Absent: from now. Older than the log keeps: RESYNC_REQUIRED; not a cursor: BAD_USER_INPUT',
    })
    _after: string | null,
    @Ctx() _context: Context,
  ): TaskChangeEvent {
    if (item.end) throw item.end;
    const { kind, taskId, task, at } = item.change;
    return { cursor: encodeChangeCursor(item.position), kind, taskId, task, at };
  }
}
