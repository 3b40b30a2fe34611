import type { Rel } from '@mikro-orm/core';
import { ArrayType } from '@mikro-orm/core';
import { Check, Entity, Enum, Index, ManyToOne, Property } from '@mikro-orm/decorators/legacy';
import { Field, Int, ObjectType } from 'type-graphql';
import { BaseEntity } from '../../db/base.entity.js';
import { User } from '../users/user.entity.js';
import { TaskPriority, TaskStatus } from './task.enums.js';
import { DESCRIPTION_MAX, isOverdue, TAGS_MAX, TITLE_MAX } from './task.rules.js';

@ObjectType({ simpleResolvers: true, description: 'A task of the signed-in user' })
@Entity({ tableName: 'tasks' })
// The owner leads every index: each ordering and filter of a page is a range of one (docs/scale.md). The
// expressions are the list query's (task.sql.ts); Migration20261207100000_task_page_indexes built them, and the
// schema test holds the two alike.
@Index({ name: 'tasks_owner_status_idx', properties: ['owner', 'status'] })
@Index({ name: 'tasks_owner_created_at_idx', properties: ['owner', 'createdAt', 'id'] })
@Index({ name: 'tasks_owner_updated_at_idx', properties: ['owner', 'updatedAt', 'id'] })
@Index({ name: 'tasks_owner_due_date_idx', properties: ['owner', 'dueDate', 'id'] })
@Index({
  name: 'tasks_owner_priority_rank_idx',
  expression: `create index "tasks_owner_priority_rank_idx" on tasks (owner_id, (case priority when 'LOW' then 0 when 'MEDIUM' then 1 when 'HIGH' then 2 when 'URGENT' then 3 end), id)`,
})
@Index({
  name: 'tasks_owner_open_due_date_idx',
  expression: `create index "tasks_owner_open_due_date_idx" on tasks (owner_id, due_date, id) where status <> 'COMPLETED'`,
})
@Index({
  name: 'tasks_owner_title_idx',
  expression: `create index "tasks_owner_title_idx" on tasks (owner_id, (lower(title) collate "C"), id)`,
})
@Index({ name: 'tasks_owner_tags_idx', expression: `create index "tasks_owner_tags_idx" on tasks using gin (owner_id, tags)` })
@Index({
  name: 'tasks_owner_search_idx',
  expression: `create index "tasks_owner_search_idx" on tasks using gin (owner_id, (title || ' ' || coalesce(description, '')) gin_trgm_ops)`,
})
@Check({ name: 'tasks_title_length', expression: `char_length(btrim(title)) >= 1 and char_length(title) <= ${TITLE_MAX}` })
@Check({ name: 'tasks_description_length', expression: `char_length(description) <= ${DESCRIPTION_MAX}` })
@Check({ name: 'tasks_tags_count', expression: `cardinality(tags) <= ${TAGS_MAX}` })
@Check({ name: 'tasks_completed_at_matches_status', expression: `(status = 'COMPLETED') = (completed_at is not null)` })
export class Task extends BaseEntity<'description' | 'status' | 'priority' | 'tags' | 'dueDate' | 'completedAt' | 'isOverdue' | 'version'> {
  /** Kept by the database (a trigger on update): never written by the server. */
  @Field(() => Int, { description: '1 when the task is created, one more with every committed change (completion included)' })
  @Property({ type: 'integer', default: 1 })
  version: number = 1;

  @Field({ description: `1 to ${TITLE_MAX} characters (code points), trimmed` })
  @Property({ type: 'string', length: TITLE_MAX })
  title!: string;

  @Field(() => String, { nullable: true, description: `At most ${DESCRIPTION_MAX} characters; null when there is none` })
  @Property({ type: 'text', nullable: true })
  description: string | null = null;

  @Field(() => TaskStatus, { description: 'PENDING, IN_PROGRESS or COMPLETED' })
  @Enum({ items: () => TaskStatus, default: TaskStatus.PENDING })
  status: TaskStatus = TaskStatus.PENDING;

  @Field(() => TaskPriority, { description: 'LOW, MEDIUM, HIGH or URGENT' })
  @Enum({ items: () => TaskPriority, default: TaskPriority.MEDIUM })
  priority: TaskPriority = TaskPriority.MEDIUM;

  @Field(() => [String], { description: `At most ${TAGS_MAX}, each 1 to 50 characters, stored lower-case, without duplicates` })
  @Property({ type: ArrayType, columnType: 'text[]', defaultRaw: `'{}'` })
  tags: string[] = [];

  @Field(() => Date, { nullable: true, description: 'When it is due (UTC); null when it has no due date' })
  @Property({ type: 'datetime', length: 3, nullable: true })
  dueDate: Date | null = null;

  @Field(() => Date, { nullable: true, description: 'Set when the status becomes COMPLETED, cleared (null) when it leaves it' })
  @Property({ type: 'datetime', length: 3, nullable: true })
  completedAt: Date | null = null;

  @Field(() => User, { description: 'Whose task it is: always the signed-in user' })
  @ManyToOne(() => User, { deleteRule: 'cascade', index: false })
  owner!: Rel<User>;

  @Field(() => Boolean, { description: 'dueDate in the past and status is not COMPLETED' })
  get isOverdue(): boolean {
    return isOverdue(this);
  }
}
