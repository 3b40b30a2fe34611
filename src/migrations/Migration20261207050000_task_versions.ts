import { Migration } from '@mikro-orm/migrations';

const epochMs = (column: string) => `(extract(epoch from ${column}) * 1000)::float8`;

/** The change log's trigger function, with or without the task's version in the task it logs. */
const logFunction = (withVersion: boolean) => `create or replace function "task_changes_log"() returns trigger language plpgsql as $$
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
    'created_at', ${epochMs('new.created_at')}, 'updated_at', ${epochMs('new.updated_at')}${withVersion ? `, 'version', new.version` : ''}));
  return null;
end $$;`;

/**
 * A task's version: 1 when it is created, one more with every update that changes the row, whoever writes it (the
 * server, a repair in psql), so that clients can apply change events by version and a stale `expectedVersion` is
 * refused. Kept by a trigger rather than by the ORM, and logged with the task. Adding a column with a constant
 * default rewrites nothing (PostgreSQL 11 and later).
 */
export class Migration20261207050000_task_versions extends Migration {
  override name = 'Migration20261207050000_task_versions';

  override up(): void {
    this.addSql(`alter table "tasks" add column "version" int not null default 1;`);
    this.addSql(`create function "tasks_next_version"() returns trigger language plpgsql as $$
begin
  new.version := old.version + 1;
  return new;
end $$;`);
    this.addSql(`create trigger "tasks_next_version" before update on "tasks"
      for each row when (old.* is distinct from new.*) execute function "tasks_next_version"();`);
    this.addSql(logFunction(true));
  }

  override down(): void {
    this.addSql(logFunction(false));
    this.addSql(`drop trigger if exists "tasks_next_version" on "tasks";`);
    this.addSql(`drop function if exists "tasks_next_version"();`);
    this.addSql(`alter table "tasks" drop column "version";`);
  }
}
