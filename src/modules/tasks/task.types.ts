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
registerEnumType(SortDirection, { name: 'SortDirection' });
registerEnumType(TaskOrderField, { name: 'TaskOrderField' });

@InputType()
export class TaskFilter {
  @Field(() => [TaskStatus], { nullable: true }) status?: TaskStatus[] | null;
  @Field(() => [TaskPriority], { nullable: true }) priority?: TaskPriority[] | null;
  @Field(() => [String], { nullable: true, description: 'Has at least one of these tags' }) tagsAny?: string[] | null;
  @Field(() => [String], { nullable: true, description: 'Has every one of these tags' }) tagsAll?: string[] | null;
  @Field(() => Boolean, { nullable: true }) overdue?: boolean | null;
  @Field(() => Date, { nullable: true }) dueBefore?: Date | null;
  @Field(() => Date, { nullable: true }) dueAfter?: Date | null;
  @Field(() => String, { nullable: true, description: 'Case-insensitive match in title or description' }) search?: string | null;
}

@InputType()
export class TaskOrder {
  @Field(() => TaskOrderField) field!: TaskOrderField;
  @Field(() => SortDirection) direction!: SortDirection;
}

@InputType()
export class CreateTaskInput {
  @Field(() => ID, {
    nullable: true,
    description: 'A UUID the client chose: creating it again answers that task as it is now and writes nothing',
  })
  id?: string | null;
  @Field() title!: string;
  @Field(() => String, { nullable: true }) description?: string | null;
  @Field(() => TaskStatus, { nullable: true }) status?: TaskStatus | null;
  @Field(() => TaskPriority, { nullable: true }) priority?: TaskPriority | null;
  @Field(() => [String], { nullable: true }) tags?: string[] | null;
  @Field(() => Date, { nullable: true }) dueDate?: Date | null;
}

/** Every field optional: an absent field is left as it is, an explicit null clears `description` or `dueDate`. */
@InputType()
export class UpdateTaskInput {
  @Field(() => String, { nullable: true }) title?: string | null;
  @Field(() => String, { nullable: true }) description?: string | null;
  @Field(() => TaskStatus, { nullable: true }) status?: TaskStatus | null;
  @Field(() => TaskPriority, { nullable: true }) priority?: TaskPriority | null;
  @Field(() => [String], { nullable: true }) tags?: string[] | null;
  @Field(() => Date, { nullable: true }) dueDate?: Date | null;
}

@ObjectType({ simpleResolvers: true })
export class PageInfo {
  @Field() hasNextPage!: boolean;
  @Field() hasPreviousPage!: boolean;
  @Field(() => String, { nullable: true }) startCursor!: string | null;
  @Field(() => String, { nullable: true }) endCursor!: string | null;
}

@ObjectType({ simpleResolvers: true })
export class TaskEdge {
  @Field() cursor!: string;
  @Field(() => Task) node!: TaskRecord;
}

@ObjectType({ simpleResolvers: true })
export class TaskConnection {
  @Field(() => [TaskEdge]) edges!: TaskEdge[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
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
  @Field(() => TaskFilter, { nullable: true }) filter?: TaskFilter | null;
  @Field(() => TaskOrder, { nullable: true }) orderBy?: TaskOrder | null;
  @Field(() => Int, { nullable: true, defaultValue: 20 }) first!: number;
  @Field(() => String, { nullable: true }) after?: string | null;
}


/** The optional argument of updateTask, completeTask and deleteTask that catches a conflicting edit. */
export const EXPECTED_VERSION = 'When given and not the task’s current version, nothing is written: CONFLICT with extensions.currentVersion';

@ArgsType()
export class UpdateTaskArgs {
  @Field(() => ID) id!: string;
  @Field(() => UpdateTaskInput) input!: UpdateTaskInput;
  @Field(() => Int, { nullable: true, description: EXPECTED_VERSION }) expectedVersion?: number | null;
}
