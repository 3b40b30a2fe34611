import type { MikroORM } from '@mikro-orm/postgresql';
import type pg from 'pg';
import { freePort } from '../src/db/embedded.js';
import { backoffMs, waitForDatabase, DatabaseUnreachableError } from '../src/db/connect.js';
import { connectionSettings } from '../src/db/connection-settings.js';
import { ormOptions } from '../src/db/orm-options.js';
import { createLogger } from '../src/observability/logger.js';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { openOrm, testConfig } from './support/orm.js';
import { spawnServer } from './support/process.js';

describe('connection settings from the URL', () => {
  it('turns TLS on for sslmode=require and stricter, verifying the certificate', () => {
    for (const mode of ['require', 'verify-ca', 'verify-full']) {
      expect(connectionSettings(`postgresql://u:p@ep-x-pooler.neon.tech/db?sslmode=${mode}`).ssl).toEqual({ rejectUnauthorized: true });
    }
    for (const url of ['postgresql://u:p@localhost/db', 'postgresql://u:p@localhost/db?sslmode=disable', 'postgres://u:p@h/db?sslmode=prefer']) {
      expect(connectionSettings(url).ssl).toBe(false);
    }
  });

  it('decodes the parts MikroORM keeps and the ones it drops', () => {
    expect(connectionSettings('postgres://us%40er:p%40ss@db.example.com:6543/my%20db?sslmode=require&channel_binding=require')).toEqual({
      host: 'db.example.com',
      port: 6543,
      user: 'us@er',
      password: 'p@ss',
      database: 'my db',
      ssl: { rejectUnauthorized: true },
      enableChannelBinding: true,
    });
  });

  it('hands TLS to pg through driverOptions, since MikroORM drops the query string', () => {
    const url = 'postgresql://u:p@ep-x-pooler.neon.tech/db?sslmode=require';
    const options = ormOptions(testConfig(url), url, createLogger({ env: 'test', logLevel: 'silent' }));
    expect(options.driverOptions).toMatchObject({ ssl: { rejectUnauthorized: true } });
  });
});

describe('the pool', () => {
  let db: TestDatabase;
  let orm: MikroORM;
  const env = {
    DB_POOL_MIN: '1',
    DB_POOL_MAX: '7',
    DB_POOL_IDLE_TIMEOUT_MS: '12345',
    DB_POOL_ACQUIRE_TIMEOUT_MS: '2345',
    DB_POOL_MAX_LIFETIME_S: '321',
    DB_CONNECT_TIMEOUT_MS: '4321',
    DB_STATEMENT_TIMEOUT_MS: '1234',
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    orm = await openOrm(db.directUrl, env);
  });
  afterAll(async () => {
    await orm.close();
    await db.drop();
  });

  it('gets its bounds and timeouts from the configuration', async () => {
    const pool = (await orm.em.getConnection().getNativeClient()) as pg.Pool & { options: Record<string, unknown> };
    expect(pool.options).toMatchObject({
      min: 1,
      max: 7,
      idleTimeoutMillis: 12345,
      connectionTimeoutMillis: 2345,
      maxLifetimeSeconds: 321,
    });
    const client = (await pool.connect()) as pg.PoolClient & {
      _connectionTimeoutMillis: number;
      connectionParameters: Record<string, unknown>;
    };
    try {
      expect(client._connectionTimeoutMillis).toBe(4321);
      // Nothing is sent as a start-up parameter: poolers such as Neon's reject them.
      expect(client.connectionParameters.statement_timeout).toBeFalsy();
      expect(client.connectionParameters.options).toBeFalsy();
    } finally {
      client.release();
    }
  });

  it('applies the statement timeout on each connection with a statement', async () => {
    const rows = await orm.em.getConnection().execute(`select current_setting('statement_timeout') as timeout, current_setting('application_name') as app`);
    expect(rows[0]).toEqual({ timeout: '1234ms', app: 'todo-graphql-server' });
    await expect(orm.em.getConnection().execute('select pg_sleep(3)')).rejects.toMatchObject({ code: '57014' });
  });

  it('tries TLS when the URL asks for it', async () => {
    const tls = await openOrm(`${db.directUrl}?sslmode=require`);
    try {
      await expect(tls.em.getConnection().execute('select 1')).rejects.toThrow(/does not support SSL/);
    } finally {
      await tls.close();
    }
  });
});

describe('start-up connection check', () => {
  it('backs off exponentially with jitter, capped', () => {
    expect(backoffMs(0, () => 1)).toBe(500);
    expect(backoffMs(3, () => 1)).toBe(4000);
    expect(backoffMs(10, () => 1)).toBe(15_000);
    expect(backoffMs(3, () => 0.5)).toBe(2000);
    expect(backoffMs(3, () => 0)).toBe(0);
  });

  it('retries DB_CONNECT_RETRIES times, then gives one reason', async () => {
    const port = await freePort();
    const url = `postgresql://app:hunter22@127.0.0.1:${port}/todo`;
    const warnings: unknown[] = [];
    const logger = createLogger({ env: 'test', logLevel: 'silent' });
    logger.warn = ((obj: unknown) => warnings.push(obj)) as typeof logger.warn;
    const error = await waitForDatabase(url, testConfig(url, { DB_CONNECT_RETRIES: '2' }), logger).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseUnreachableError);
    expect((error as Error).message).toMatch(/^database unreachable after 3 attempt\(s\): ECONNREFUSED/);
    expect(warnings).toHaveLength(3);
  });

  it('exits non-zero with one clear reason, and no password, when the retries are spent', async () => {
    const port = await freePort();
    const server = spawnServer({
      DATABASE_URL: `postgresql://app:hunter22-secret@127.0.0.1:${port}/todo`,
      DB_CONNECT_RETRIES: '1',
      PORT: String(await freePort()),
    });
    const { code } = await server.exited;
    expect(code).toBe(1);
    const lines = server.output().trim().split('\n').map((line) => JSON.parse(line));
    expect(lines.filter((l) => l.msg === 'database connection attempt failed')).toHaveLength(2);
    // pino writes a fatal line at once, possibly ahead of lines still buffered: look for it, not at the end.
    expect(lines.filter((l) => l.level === 60)).toEqual([
      expect.objectContaining({ msg: expect.stringMatching(/^start-up failed: database unreachable after 2 attempt\(s\): ECONNREFUSED/) }),
    ]);
    expect(server.output()).not.toContain('hunter22-secret');
  });

  it('refuses to start on a bad configuration, naming every bad variable', async () => {
    const server = spawnServer({ PORT: '80', DB_POOL_MAX: '0', JWT_SECRET: 'too-short-secret' });
    const { code } = await server.exited;
    expect(code).toBe(1);
    expect(server.output()).toMatch(/PORT is invalid: must be an integer within 1024\.\.65535/);
    expect(server.output()).toMatch(/DB_POOL_MAX is invalid/);
    expect(server.output()).toMatch(/JWT_SECRET is invalid/);
    expect(server.output()).not.toContain('too-short-secret');
  });
});
