import { ArgsType, Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Task } from './task.entity.js';
import type { TaskRecord } from './task.record.js';
import { TaskPriority, TaskStatus } from './task.enums.js';

export enum SortDirection {
  ASC = 'ASC',
  DESC = 'DESC',
}
export enum TaskOrderField {
  CREATED_AT = 'CREATED_AT',
  UPDATED_AT = 'UPDATED_AT',
  DUE_DATE = 'DUE_DATE',
  PRIORITY = 'PRIORITY',
  TITLE = 'TITLE',
}
registerEnumType(SortDirection, {
  name: 'SortDirection',
  description: 'Which way an order runs',
  valuesConfig: {
    ASC: { description: 'Smallest, earliest or first in the alphabet first' },
    DESC: { description: 'Largest, latest or last first' },
  },
});
registerEnumType(TaskOrderField, {
  name: 'TaskOrderField',
  description: 'What a page of tasks is ordered by; the id breaks ties, so paging is stable',
  valuesConfig: {
    CREATED_AT: { description: 'When it was created (the default order, newest first)' },
    UPDATED_AT: { description: 'When it last changed' },
    DUE_DATE: { description: 'Its due date; tasks without one come last in either direction' },
    PRIORITY: { description: 'Its priority’s rank, LOW to URGENT' },
    TITLE: { description: 'Its title’s lower case, character by character (letters outside ASCII by code point)' },
  },
});

@InputType({ description: 'Which of the user’s tasks a page holds: every condition given must hold' })
export class TaskFilter {
  @Field(() => [TaskStatus], { nullable: true, description: 'Has one of these statuses' }) status?: TaskStatus[] | null;
  @Field(() => [TaskPriority], { nullable: true, description: 'Has one of these priorities' }) priority?: TaskPriority[] | null;
  @Field(() => [String], { nullable: true, description: 'Has at least one of these tags' }) tagsAny?: string[] | null;
  @Field(() => [String], { nullable: true, description: 'Has every one of these tags' }) tagsAll?: string[] | null;
  @Field(() => Boolean, { nullable: true, description: 'true: only overdue tasks (isOverdue); false: only the others' }) overdue?:
    boolean | null;
  @Field(() => Date, { nullable: true, description: 'Due strictly before this time (tasks without a due date are left out)' })
  dueBefore?: Date | null;
  @Field(() => Date, { nullable: true, description: 'Due strictly after this time (tasks without a due date are left out)' })
  dueAfter?: Date | null;
  @Field(() => String, { nullable: true, description: 'Case-insensitive match in title or description' }) search?: string | null;
}

@InputType({ description: 'The order of a page; cursors belong to one order and direction' })
export class TaskOrder {
  @Field(() => TaskOrderField, { description: 'What to order by' }) field!: TaskOrderField;
  @Field(() => SortDirection, { description: 'Which way' }) direction!: SortDirection;
}

@InputType({ description: 'A new task; what is not given takes its default' })
export class CreateTaskInput {
  @Field(() => ID, {
    nullable: true,
    description: 'A UUID the client chose: creating it again answers that task as it is now and writes nothing',
  })
  id?: string | null;
  @Field({ description: '1 to 200 characters (code points) after trimming' }) title!: string;
  @Field(() => String, { nullable: true, description: 'At most 10,000 characters' }) description?: string | null;
  @Field(() => TaskStatus, { nullable: true, description: 'PENDING unless given' }) status?: TaskStatus | null;
  @Field(() => TaskPriority, { nullable: true, description: 'MEDIUM unless given' }) priority?: TaskPriority | null;
  @Field(() => [String], { nullable: true, description: 'At most 20, each 1 to 50 characters; trimmed, lower-cased and de-duplicated' })
  tags?: string[] | null;
  @Field(() => Date, { nullable: true, description: 'Between the years 1 and 9999' }) dueDate?: Date | null;
}

/** Every field optional: an absent field is left as it is, an explicit null clears `description` or `dueDate`. */
@InputType({ description: 'What to change: an absent field is left as it is; null clears description or dueDate and is refused elsewhere' })
export class UpdateTaskInput {
  @Field(() => String, { nullable: true, description: '1 to 200 characters (code points) after trimming; not null' }) title?: string | null;
  @Field(() => String, { nullable: true, description: 'At most 10,000 characters; null clears it' }) description?: string | null;
  @Field(() => TaskStatus, { nullable: true, description: 'Not null; completedAt follows it' }) status?: TaskStatus | null;
  @Field(() => TaskPriority, { nullable: true, description: 'Not null' }) priority?: TaskPriority | null;
  @Field(() => [String], {
    nullable: true,
    description: 'Replaces every tag: at most 20, each 1 to 50 characters; not null ([] clears them)',
  })
  tags?: string[] | null;
  @Field(() => Date, { nullable: true, description: 'Between the years 1 and 9999; null clears it' }) dueDate?: Date | null;
}

@ObjectType({ simpleResolvers: true, description: 'Where a page sits in the list' })
export class PageInfo {
  @Field({ description: 'More tasks follow: ask for them with after: endCursor' }) hasNextPage!: boolean;
  @Field({ description: 'This page was asked for with after (tasks come before it)' }) hasPreviousPage!: boolean;
  @Field(() => String, { nullable: true, description: 'The first task’s cursor; null on an empty page' }) startCursor!: string | null;
  @Field(() => String, { nullable: true, description: 'The last task’s cursor, to pass as after; null on an empty page' }) endCursor!:
    string | null;
}

@ObjectType({ simpleResolvers: true, description: 'A task of a page, and its place' })
export class TaskEdge {
  @Field({ description: 'Opaque: pass it as after to continue after this task, in the same order and direction' }) cursor!: string;
  @Field(() => Task, { description: 'The task' }) node!: TaskRecord;
}

@ObjectType({ simpleResolvers: true, description: 'A page of the user’s tasks' })
export class TaskConnection {
  @Field(() => [TaskEdge], { description: 'The tasks of the page, in order' }) edges!: TaskEdge[];
  @Field(() => PageInfo, { description: 'Whether more follow, and the cursors to get them' }) pageInfo!: PageInfo;
  @Field({
    description:
      'The change feed’s position of the snapshot this page was read in: taskChanges(after: changesCursor) delivers ' +
      'every change the page does not reflect, once, and none it does',
  })
  changesCursor!: string;
  /** Runs only when `totalCount` is selected (see TaskConnectionResolver). */
  countTotal!: () => Promise<number>;
}

@ArgsType()
export class TasksArgs {
  @Field(() => TaskFilter, { nullable: true, description: 'Which tasks; all of the user’s when absent' }) filter?: TaskFilter | null;
  @Field(() => TaskOrder, { nullable: true, description: 'CREATED_AT DESC when absent' }) orderBy?: TaskOrder | null;
  @Field(() => Int, { nullable: true, defaultValue: 20, description: 'The page size, 1 to 100' }) first!: number;
  @Field(() => String, {
    nullable: true,
    description: 'A cursor of this order and direction: the page starts after it. Not one: BAD_USER_INPUT',
  })
  after?: string | null;
}

/** The optional argument of updateTask, completeTask and deleteTask that catches a conflicting edit. */
export const EXPECTED_VERSION =
  'When given and not the task’s current version, nothing is written: CONFLICT with extensions.currentVersion';

@ArgsType()
export class UpdateTaskArgs {
  @Field(() => ID, { description: 'The task; not the caller’s: NOT_FOUND' }) id!: string;
  @Field(() => UpdateTaskInput, { description: 'What to change' }) input!: UpdateTaskInput;
  @Field(() => Int, { nullable: true, description: EXPECTED_VERSION }) expectedVersion?: number | null;
}
