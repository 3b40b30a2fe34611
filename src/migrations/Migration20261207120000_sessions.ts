import { Migration } from '@mikro-orm/migrations';

/**
 * Sessions and their refresh tokens (modules/users/session.store.ts). A session ends by being deleted, and its
 * refresh tokens with it; a user's deletion takes their sessions along. Only a SHA-256 hash of a refresh token is
 * stored. A spent token is kept (with `spent_at`) until its own expiry, so that presenting it again is known for
 * what it is, reuse, and ends its session.
 */
export class Migration20261207120000_sessions extends Migration {
  override name = 'Migration20261207120000_sessions';

  override up(): void {
    this.addSql(`create table "sessions" (
      "id" uuid primary key,
      "user_id" uuid not null references "users" ("id") on delete cascade,
      "created_at" timestamptz not null default now(),
      "last_used_at" timestamptz not null default now(),
      "expires_at" timestamptz not null,
      "user_agent" varchar(200) null);`);
    this.addSql(`create index "sessions_user_last_used_idx" on "sessions" ("user_id", "last_used_at");`);
    this.addSql(`create index "sessions_expires_at_idx" on "sessions" ("expires_at");`);
    this.addSql(`create table "refresh_tokens" (
      "hash" bytea primary key check (octet_length("hash") = 32),
      "session_id" uuid not null references "sessions" ("id") on delete cascade,
      "expires_at" timestamptz not null,
      "spent_at" timestamptz null);`);
    this.addSql(`create index "refresh_tokens_session_idx" on "refresh_tokens" ("session_id");`);
    this.addSql(`create index "refresh_tokens_expires_at_idx" on "refresh_tokens" ("expires_at");`);
  }

  override down(): void {
    this.addSql(`drop table if exists "refresh_tokens";`);
    this.addSql(`drop table if exists "sessions";`);
  }
}
