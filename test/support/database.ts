import { randomBytes } from 'node:crypto';
import pg from 'pg';

function adminUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is not set: run the tests through jest (globalSetup starts PostgreSQL)');
  return url;
}

export async function adminQuery<T extends pg.QueryResultRow>(sql: string, params: unknown[] = [], url = adminUrl()) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query<T>(sql, params);
  } finally {
    await client.end();
  }
}

/** The URL the server under test uses: through PgBouncer when the run has one (TEST_PGBOUNCER=1). */
function pooled(direct: URL): string {
  const port = process.env.TEST_POOLER_PORT;
  if (!port) return direct.toString();
  const url = new URL(direct);
  url.port = port;
  return url.toString();
}

/** The unpooled URL for `url`, as DATABASE_DIRECT_URL would give it: for migrations and their advisory lock. */
export function directUrlFor(url: string): string {
  const parsed = new URL(url);
  if (!process.env.TEST_POOLER_PORT || parsed.port !== process.env.TEST_POOLER_PORT) return url;
  parsed.port = new URL(adminUrl()).port;
  return parsed.toString();
}

export interface TestDatabase {
  name: string;
  /** Through PgBouncer when the run has one; otherwise the same as `directUrl`. */
  url: string;
  directUrl: string;
  query<T extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<T>>;
  drop(): Promise<void>;
}

/** A fresh, empty database on the test server: one per test file (or per test that needs a clean slate). */
/** A fresh database for the tests of the enclosing `describe`, dropped after them; `db` is set once `beforeAll` has run. */
export function databaseForTests(): { db: TestDatabase } {
  const fixture = {} as { db: TestDatabase };
  beforeAll(async () => {
    fixture.db = await createTestDatabase();
  });
  afterAll(async () => {
    await fixture.db?.drop();
  });
  return fixture;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `test_${randomBytes(6).toString('hex')}`;
  await adminQuery(`create database ${name}`);
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  return {
    name,
    url: pooled(url),
    directUrl: url.toString(),
    query: (sql, params) => adminQuery(sql, params, url.toString()),
    drop: async () => {
      await adminQuery(`drop database if exists ${name} with (force)`);
    },
  };
}

/** Connections the servers under test hold on `db`: PgBouncer's clients for it, or PostgreSQL's backends. */
export async function openConnections(db: TestDatabase): Promise<number> {
  const port = process.env.TEST_POOLER_PORT;
  if (!port) {
    const { rows } = await db.query<{ n: number }>(
      'select count(*)::int as n from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
      [db.name],
    );
    return rows[0]!.n;
  }
  const console = new URL(adminUrl());
  console.port = port;
  console.pathname = '/pgbouncer';
  const { rows } = await adminQuery<{ database: string }>('show clients', [], console.toString());
  return rows.filter((row) => row.database === db.name).length;
}

/** Backends of this database waiting for a lock, as `client` sees them now (not from its cached snapshot). */
export async function lockWaiters(client: pg.Client): Promise<number> {
  await client.query('select pg_stat_clear_snapshot()');
  const { rows } = await client.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()`,
  );
  return rows[0]!.n;
}

/** The instances listening for ended sessions on the database at `url` (their sessions_ended LISTEN connections). */
export async function sessionListeners(url: string): Promise<number> {
  const { rows } = await adminQuery<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity where application_name = 'todo-graphql-server listener (sessions_ended)'`,
    [],
    url,
  );
  return rows[0]!.n;
}
