import { Migration } from '@mikro-orm/migrations';

/**
 * An index for every ordering and filter of `tasks`, each led by the owner, so that a page reads its own rows
 * whatever a user keeps and whatever the table holds (docs/scale.md).
 *
 * Built with `create index concurrently`, which does not block writes and cannot run in a transaction: this
 * migration runs outside one. An interrupted build leaves an invalid index behind; running the migration again
 * drops it and builds it anew, and skips those that are built.
 *
 * The expressions are the ones the list query orders by (task.sql.ts ORDER_KEY): the planner uses an expression
 * index only for the same expression.
 */
export const TASK_PAGE_INDEXES: Record<string, string> = {
  tasks_owner_updated_at_idx: `on tasks (owner_id, updated_at, id)`,
  // NULL due dates last: the list reads dated and undated tasks as two ranges of it.
  tasks_owner_due_date_idx: `on tasks (owner_id, due_date, id)`,
  tasks_owner_priority_rank_idx: `on tasks (owner_id, (case priority when 'LOW' then 0 when 'MEDIUM' then 1 when 'HIGH' then 2 when 'URGENT' then 3 end), id)`,
  // Titles sort by their lower case, byte by byte (collation "C"): the same on every server and libc.
  tasks_owner_title_idx: `on tasks (owner_id, (lower(title) collate "C"), id)`,
  // Overdue tasks (past their due date and not completed) as a range of the open ones.
  tasks_owner_open_due_date_idx: `on tasks (owner_id, due_date, id) where status <> 'COMPLETED'`,
  // One user's tags, and their titles and descriptions by trigram: other users' rows are not in the way.
  tasks_owner_tags_idx: `on tasks using gin (owner_id, tags)`,
  tasks_owner_search_idx: `on tasks using gin (owner_id, (title || ' ' || coalesce(description, '')) gin_trgm_ops)`,
};

/** Served by the indexes above: the tags of every user, and priorities by name (now filtered by rank). */
const REPLACED = ['tasks_tags_gin_idx', 'tasks_owner_priority_idx'];

export class Migration20261207100000_task_page_indexes extends Migration {
  override name = 'Migration20261207100000_task_page_indexes';

  override isTransactional(): boolean {
    return false;
  }

  override async up(): Promise<void> {
    this.addSql('create extension if not exists btree_gin');
    this.addSql('create extension if not exists pg_trgm');
    const invalid = await this.execute(
      `select c.relname as name from pg_index i join pg_class c on c.oid = i.indexrelid
       where not i.indisvalid and c.relname = any(?::text[])`,
      [`{${Object.keys(TASK_PAGE_INDEXES).join(',')}}`],
    );
    for (const { name } of invalid) this.addSql(`drop index concurrently if exists "${name as string}"`);
    for (const [name, definition] of Object.entries(TASK_PAGE_INDEXES))
      this.addSql(`create index concurrently if not exists "${name}" ${definition}`);
    for (const name of REPLACED) this.addSql(`drop index concurrently if exists "${name}"`);
  }

  override down(): void {
    this.addSql(`create index concurrently if not exists "tasks_tags_gin_idx" on tasks using gin (tags)`);
    this.addSql(`create index concurrently if not exists "tasks_owner_priority_idx" on tasks (owner_id, priority)`);
    for (const name of Object.keys(TASK_PAGE_INDEXES)) this.addSql(`drop index concurrently if exists "${name}"`);
  }
}
