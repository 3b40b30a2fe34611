import { Migration } from '@mikro-orm/migrations';

/** Users and their tasks. Generated from the entities by `migration:create --initial`, then reviewed and grouped. */
export class Migration20261122042506_initial extends Migration {
  override name = 'Migration20261122042506_initial';

  override up(): void {
    // Timestamps keep milliseconds, as JavaScript dates do, so a cursor's value round-trips exactly.
    this.addSql(`create table "users" (
      "id" uuid not null,
      "created_at" timestamptz(3) not null,
      "updated_at" timestamptz(3) not null,
      "email" varchar(320) not null,
      "name" varchar(200) null,
      "password_hash" varchar(100) not null,
      primary key ("id"));`);
    // Emails are stored trimmed and lower-case, so this unique constraint compares them case-insensitively.
    this.addSql(`alter table "users" add constraint "users_email_unique" unique ("email");`);
    this.addSql(`alter table "users" add constraint "users_email_normalised" check (email = lower(btrim(email)));`);

    this.addSql(`create table "tasks" (
      "id" uuid not null,
      "created_at" timestamptz(3) not null,
      "updated_at" timestamptz(3) not null,
      "title" varchar(200) not null,
      "description" text null,
      "status" text not null default 'PENDING',
      "priority" text not null default 'MEDIUM',
      "tags" text[] not null default '{}',
      "due_date" timestamptz(3) null,
      "completed_at" timestamptz(3) null,
      "owner_id" uuid not null,
      primary key ("id"));`);
    this.addSql(
      `alter table "tasks" add constraint "tasks_owner_id_foreign" foreign key ("owner_id") references "users" ("id") on delete cascade;`,
    );

    // The owner leads every index: all reads are scoped to one user.
    this.addSql(`create index "tasks_owner_created_at_idx" on "tasks" ("owner_id", "created_at", "id");`);
    this.addSql(`create index "tasks_owner_status_idx" on "tasks" ("owner_id", "status");`);
    this.addSql(`create index "tasks_owner_priority_idx" on "tasks" ("owner_id", "priority");`);
    // Serves the tag filters' array operators (&& for any, @> for all).
    this.addSql(`create index "tasks_tags_gin_idx" on "tasks" using gin ("tags");`);

    this.addSql(`alter table "tasks" add constraint "tasks_status_check" check ("status" in ('PENDING', 'IN_PROGRESS', 'COMPLETED'));`);
    this.addSql(`alter table "tasks" add constraint "tasks_priority_check" check ("priority" in ('LOW', 'MEDIUM', 'HIGH', 'URGENT'));`);
    this.addSql(
      `alter table "tasks" add constraint "tasks_title_length" check (char_length(btrim(title)) >= 1 and char_length(title) <= 200);`,
    );
    this.addSql(`alter table "tasks" add constraint "tasks_description_length" check (char_length(description) <= 10000);`);
    this.addSql(`alter table "tasks" add constraint "tasks_tags_count" check (cardinality(tags) <= 20);`);
    this.addSql(
      `alter table "tasks" add constraint "tasks_completed_at_matches_status" check ((status = 'COMPLETED') = (completed_at is not null));`,
    );
  }

  override down(): void {
    this.addSql(`drop table if exists "tasks" cascade;`);
    this.addSql(`drop table if exists "users" cascade;`);
  }
}
