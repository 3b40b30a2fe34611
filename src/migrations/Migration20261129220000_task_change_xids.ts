import { Migration } from '@mikro-orm/migrations';

const epochMs = (column: string) => `(extract(epoch from ${column}) * 1000)::float8`;

/**
 * The change log is written by a trigger on `tasks` and ordered by transaction id, so that one user's writers
 * no longer queue on a per-user counter row (nor, with the announcement moved out of the transaction, on the
 * cluster-wide lock NOTIFY takes at commit; see task.changes.ts).
 *
 * - `xid` is the writing transaction's id, `id` orders a transaction's own changes. A reader takes only the
 *   changes whose `xid` is below its snapshot's xmin: every transaction below it has ended, and every one that
 *   commits later has an id at or above it, so reading "after (xid, id)" never skips a late commit.
 * - `task_change_pruned` keeps, per user, the last position pruning deleted: a cursor before it has lost changes.
 * - The trigger logs every committed insert, update and delete of a task, whoever makes it. A task deleted
 *   because its owner is deleted logs nothing (the owner's log goes with them). A session that sets
 *   `todo.log_task_changes` to `off` writes without logging (a bulk repair that clients will refetch after;
 *   the benchmarks' hand-written baselines, which measure the write alone).
 *
 * Positions are not comparable with the per-user seqs before, so the log starts empty; a cursor issued before
 * is answered with RESYNC_REQUIRED.
 */
export class Migration20261129220000_task_change_xids extends Migration {
  override name = 'Migration20261129220000_task_change_xids';

  override up(): void {
    this.addSql(`drop table "task_changes";`);
    this.addSql(`drop table "task_change_seqs";`);
    this.addSql(`create table "task_changes" (
      "owner_id" uuid not null references "users" ("id") on delete cascade,
      "xid" xid8 not null default pg_current_xact_id(),
      "id" bigint generated always as identity,
      "kind" text not null check ("kind" in ('CREATED', 'UPDATED', 'DELETED')),
      "task_id" uuid not null,
      "at" timestamptz(3) not null default clock_timestamp(),
      "task" jsonb null);`);
    this.addSql(`create index "task_changes_owner_position_idx" on "task_changes" ("owner_id", "xid", "id");`);
    this.addSql(`create index "task_changes_at_idx" on "task_changes" ("at");`);
    this.addSql(`create table "task_change_pruned" (
      "owner_id" uuid primary key references "users" ("id") on delete cascade,
      "xid" xid8 not null,
      "id" bigint not null);`);
    this.addSql(`create function "task_changes_log"() returns trigger language plpgsql as $$
begin
  if current_setting('todo.log_task_changes', true) = 'off' then
    return null;
  end if;
  if tg_op = 'DELETE' then
    insert into task_changes (owner_id, kind, task_id)
    select old.owner_id, 'DELETED', old.id where exists (select 1 from users where id = old.owner_id);
    return null;
  end if;
  insert into task_changes (owner_id, kind, task_id, task)
  values (new.owner_id, case tg_op when 'INSERT' then 'CREATED' else 'UPDATED' end, new.id, json_build_object(
    'id', new.id, 'title', new.title, 'description', new.description, 'status', new.status, 'priority', new.priority,
    'tags', new.tags, 'due_date', ${epochMs('new.due_date')}, 'completed_at', ${epochMs('new.completed_at')},
    'created_at', ${epochMs('new.created_at')}, 'updated_at', ${epochMs('new.updated_at')}));
  return null;
end $$;`);
    this.addSql(`create trigger "task_changes_log" after insert or update or delete on "tasks"
      for each row execute function "task_changes_log"();`);
  }

  override down(): void {
    this.addSql(`drop trigger if exists "task_changes_log" on "tasks";`);
    this.addSql(`drop function if exists "task_changes_log"();`);
    this.addSql(`drop table if exists "task_change_pruned";`);
    this.addSql(`drop table if exists "task_changes";`);
    this.addSql(`create table "task_change_seqs" (
      "owner_id" uuid not null references "users" ("id") on delete cascade,
      "seq" bigint not null,
      primary key ("owner_id"));`);
    this.addSql(`create table "task_changes" (
      "owner_id" uuid not null references "users" ("id") on delete cascade,
      "seq" bigint not null,
      "kind" text not null check ("kind" in ('CREATED', 'UPDATED', 'DELETED')),
      "task_id" uuid not null,
      "at" timestamptz(3) not null default now(),
      "task" jsonb null,
      primary key ("owner_id", "seq"));`);
    this.addSql(`create index "task_changes_at_idx" on "task_changes" ("at");`);
  }
}
