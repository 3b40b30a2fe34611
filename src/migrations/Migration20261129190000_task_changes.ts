import { Migration } from '@mikro-orm/migrations';

/**
 * The tasks' change log (a transactional outbox), written by the same transaction as the change it records.
 * `seq` counts each user's changes from 1, without gaps, in commit order: it is taken from the user's row of
 * `task_change_seqs`, whose lock the writing transaction holds until it commits. A change keeps its task's id
 * after the task is deleted, so `task_id` references nothing.
 */
export class Migration20261129190000_task_changes extends Migration {
  override name = 'Migration20261129190000_task_changes';

  override up(): void {
    this.addSql(`create table "task_change_seqs" (
      "owner_id" uuid not null,
      "seq" bigint not null,
      primary key ("owner_id"));`);
    this.addSql(
      `alter table "task_change_seqs" add constraint "task_change_seqs_owner_id_foreign" foreign key ("owner_id") references "users" ("id") on delete cascade;`,
    );

    // The primary key is also the index that reads a user's changes after a seq.
    this.addSql(`create table "task_changes" (
      "owner_id" uuid not null,
      "seq" bigint not null,
      "kind" text not null,
      "task_id" uuid not null,
      "at" timestamptz(3) not null default now(),
      primary key ("owner_id", "seq"));`);
    this.addSql(
      `alter table "task_changes" add constraint "task_changes_owner_id_foreign" foreign key ("owner_id") references "users" ("id") on delete cascade;`,
    );
    this.addSql(`alter table "task_changes" add constraint "task_changes_kind_check" check ("kind" in ('CREATED', 'UPDATED', 'DELETED'));`);
  }

  override down(): void {
    this.addSql(`drop table if exists "task_changes";`);
    this.addSql(`drop table if exists "task_change_seqs";`);
  }
}
