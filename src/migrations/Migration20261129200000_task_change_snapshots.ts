import { Migration } from '@mikro-orm/migrations';

/**
 * Each change keeps the task as its transaction committed it (`task`, null for a deletion), so that the feed
 * replays every change as it was, not the task as it is now. The index on `at` lets the server prune the log
 * past its retention without reading all of it.
 */
export class Migration20261129200000_task_change_snapshots extends Migration {
  override name = 'Migration20261129200000_task_change_snapshots';

  override up(): void {
    this.addSql(`alter table "task_changes" add column "task" jsonb null;`);
    this.addSql(`create index "task_changes_at_idx" on "task_changes" ("at");`);
  }

  override down(): void {
    this.addSql(`drop index if exists "task_changes_at_idx";`);
    this.addSql(`alter table "task_changes" drop column if exists "task";`);
  }
}
