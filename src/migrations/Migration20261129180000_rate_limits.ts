import { Migration } from '@mikro-orm/migrations';

/**
 * Rate-limit counters shared by every instance, in the shape rate-limiter-flexible's PostgreSQL store reads and
 * writes (it is told the table exists, so it never creates one at run time). Rows are keyed `auth:<ip>` and
 * `cost:<user id>`; `expire` is the end of the key's window in epoch milliseconds.
 */
export class Migration20261129180000_rate_limits extends Migration {
  override name = 'Migration20261129180000_rate_limits';

  override up(): void {
    this.addSql(`create table "rate_limits" (
      "key" varchar(255) not null,
      "points" integer not null default 0,
      "expire" bigint null,
      primary key ("key"));`);
    this.addSql(`create index "rate_limits_expire_index" on "rate_limits" ("expire");`);
  }

  override down(): void {
    this.addSql(`drop table if exists "rate_limits";`);
  }
}
