import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConnectionOptions, PeerCertificate } from 'node:tls';
import type { MikroORM } from '@mikro-orm/postgresql';
import type pg from 'pg';
import { PROJECT_ROOT } from '../../src/config/app-version.js';
import { ConfigError } from '../../src/config/config.js';
import { freePort } from '../../src/embedded/embedded.js';
import { backoffMs, waitForDatabase, DatabaseUnreachableError } from '../../src/db/connect.js';
import { connectionSettings } from '../../src/db/connection-settings.js';
import { ormOptions } from '../../src/db/orm-options.js';
import { createLogger } from '../../src/observability/logger.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { openOrm, testConfig } from '../support/orm.js';
import { spawnServer } from '../support/process.js';

describe('connection settings from the URL', () => {
  const neon = 'ep-x-pooler.neon.tech';
  const configErrorOf = (url: string): ConfigError => {
    try {
      connectionSettings(url);
    } catch (error) {
      if (error instanceof ConfigError) return error;
      throw error;
    }
    throw new Error('expected a ConfigError');
  };
  const problemsOf = (url: string) => configErrorOf(url).problems;

  it("turns TLS on for sslmode=require and stricter, verifying the certificate against the URL's host", () => {
    for (const mode of ['require', 'verify-full']) {
      expect(connectionSettings(`postgresql://u:p@${neon}/db?sslmode=${mode}`).ssl).toEqual({ rejectUnauthorized: true, host: neon });
    }
    for (const query of ['', '?sslmode=disable', '?sslmode=prefer', '?sslmode=allow']) {
      expect(connectionSettings(`postgresql://u:p@localhost/db${query}`).ssl).toBe(false);
    }
  });

  it('checks the chain only for sslmode=verify-ca', () => {
    const ssl = connectionSettings(`postgresql://u:p@${neon}/db?sslmode=verify-ca`).ssl;
    expect(ssl).toEqual({ rejectUnauthorized: true, host: neon, checkServerIdentity: expect.any(Function) });
    expect((ssl as ConnectionOptions).checkServerIdentity!('other.example.com', {} as PeerCertificate)).toBeUndefined();
  });

  it('checks an IP address host against the address, brackets of IPv6 removed', () => {
    expect(connectionSettings('postgresql://u:p@127.0.0.1:5433/db?sslmode=verify-full')).toMatchObject({
      host: '127.0.0.1',
      ssl: { rejectUnauthorized: true, host: '127.0.0.1' },
    });
    expect(connectionSettings('postgresql://u:p@[::1]:5433/db?sslmode=require')).toMatchObject({
      host: '::1',
      ssl: { rejectUnauthorized: true, host: '::1' },
    });
  });

  it('trusts the CAs of the sslrootcert file (read, as libpq reads it), or the default store for system', () => {
    const dir = mkdtempSync(join(PROJECT_ROOT, '.data', 'rootcert-'));
    try {
      const file = join(dir, 'root ca.pem');
      writeFileSync(file, '-----BEGIN CERTIFICATE-----\nnot checked here\n-----END CERTIFICATE-----\n');
      const url = `postgresql://u:p@${neon}/db?sslmode=verify-full&sslrootcert=${encodeURIComponent(file)}`;
      expect(connectionSettings(url).ssl).toEqual({ rejectUnauthorized: true, host: neon, ca: readFileSync(file, 'utf8') });
      // TLS off: the file is not needed.
      expect(connectionSettings(`postgresql://u:p@${neon}/db?sslmode=disable&sslrootcert=/nowhere.pem`).ssl).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // As libpq 16+: system is Node's default store, makes verify-full the default, and refuses verify-ca.
    for (const query of ['sslrootcert=system', 'sslrootcert=system&sslmode=verify-full', 'sslrootcert=system&sslmode=require']) {
      expect(connectionSettings(`postgresql://u:p@${neon}/db?${query}`).ssl).toEqual({ rejectUnauthorized: true, host: neon });
    }
    expect(problemsOf(`postgresql://u:p@${neon}/db?sslrootcert=system&sslmode=verify-ca`)).toEqual([
      'database URL: sslrootcert=system needs sslmode=verify-full, not verify-ca',
    ]);
  });

  it('names an sslrootcert file it cannot read, never the password', () => {
    const url = 'postgresql://app:hunter22-secret@db.example.com/db?sslmode=verify-full&sslrootcert=/etc/no-such-dir/root.crt';
    const error = configErrorOf(url);
    expect(error.problems).toEqual(['database URL: the sslrootcert file /etc/no-such-dir/root.crt cannot be read (ENOENT)']);
    expect(error.message).not.toContain('hunter22-secret');
    // A folder is no file either.
    expect(problemsOf('postgresql://u:p@h/db?sslmode=require&sslrootcert=/tmp')).toEqual([
      'database URL: the sslrootcert file /tmp cannot be read (EISDIR)',
    ]);
  });

  it('refuses an sslmode libpq does not know rather than connecting without TLS', () => {
    for (const mode of ['verify_full', 'no-verify', 'true']) {
      expect(problemsOf(`postgresql://u:p@h/db?sslmode=${mode}`)).toEqual([
        `database URL: sslmode=${mode} is not one of disable, allow, prefer, require, verify-ca, verify-full`,
      ]);
    }
  });

  it('decodes the parts MikroORM keeps and the ones it drops', () => {
    expect(connectionSettings('postgres://us%40er:p%40ss@db.example.com:6543/my%20db?sslmode=require&channel_binding=require')).toEqual({
      host: 'db.example.com',
      port: 6543,
      user: 'us@er',
      password: 'p@ss',
      database: 'my db',
      ssl: { rejectUnauthorized: true, host: 'db.example.com' },
      enableChannelBinding: true,
    });
  });

  it('hands TLS to pg through driverOptions, since MikroORM drops the query string', () => {
    const url = `postgresql://u:p@${neon}/db?sslmode=require`;
    const options = ormOptions(testConfig(url), url, createLogger({ env: 'test', logLevel: 'silent' }));
    expect(options.driverOptions).toMatchObject({ ssl: { rejectUnauthorized: true, host: neon } });
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
    const rows = await orm.em
      .getConnection()
      .execute(`select current_setting('statement_timeout') as timeout, current_setting('application_name') as app`);
    expect(rows[0]).toEqual({ timeout: '1234ms', app: 'todo-graphql-server' });
    await expect(orm.em.getConnection().execute('select pg_sleep(3)')).rejects.toMatchObject({ code: '57014' });
  });

  it('sets a new connection up before its first query: a server answering on fresh connections writes no warning', async () => {
    // pg warns when a query is queued behind another on one connection (pg 9 refuses it), which the statement
    // timeout's setting did to the first query of every connection.
    const port = await freePort();
    const server = spawnServer({
      DATABASE_URL: db.directUrl,
      PORT: String(port),
      JWT_SECRET: 'a-secret-long-enough-for-the-configuration',
      DB_STATEMENT_TIMEOUT_MS: '1234',
    });
    try {
      await server.waitFor(/"msg":"server ready"/);
      const signUp = (i: number) =>
        fetch(`http://127.0.0.1:${port}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            query: 'mutation($input: SignUpInput!) { signUp(input: $input) { token } }',
            variables: { input: { email: `fresh-${i}@example.com`, password: 'a-password-long-enough' } },
          }),
        }).then((res) => res.json() as Promise<{ data?: unknown }>);
      const answers = await Promise.all([1, 2, 3, 4].map(signUp));
      expect(answers.every((answer) => answer.data)).toBe(true);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    expect(server.output()).not.toMatch(/Warning/);
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
  // A port nothing listens on, for as long as the test runs. A port from freePort() is free only when asked: once in
  // CI something running beside this test accepted a connection on it and closed it, so the reason was not
  // ECONNREFUSED. TCP port 1 lies below the ephemeral range, so no listen(0) gets it, and no test binds it.
  const REFUSING_PORT = 1;

  it('backs off exponentially with jitter, capped', () => {
    expect(backoffMs(0, () => 1)).toBe(500);
    expect(backoffMs(3, () => 1)).toBe(4000);
    expect(backoffMs(10, () => 1)).toBe(15_000);
    expect(backoffMs(3, () => 0.5)).toBe(2000);
    expect(backoffMs(3, () => 0)).toBe(0);
  });

  it('retries DB_CONNECT_RETRIES times, then gives one reason', async () => {
    const url = `postgresql://app:hunter22@127.0.0.1:${REFUSING_PORT}/todo`;
    const warnings: unknown[] = [];
    const logger = createLogger({ env: 'test', logLevel: 'silent' });
    logger.warn = ((obj: unknown) => warnings.push(obj)) as typeof logger.warn;
    const error = await waitForDatabase(url, testConfig(url, { DB_CONNECT_RETRIES: '2' }), logger).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseUnreachableError);
    expect((error as Error).message).toMatch(/^database unreachable after 3 attempt\(s\): ECONNREFUSED/);
    expect(warnings).toHaveLength(3);
  });

  it('does not retry a setting that cannot work: an unreadable sslrootcert fails at once, naming the file', async () => {
    const url = 'postgresql://app:hunter22@127.0.0.1:5/todo?sslmode=verify-full&sslrootcert=/nonexistent/root.crt';
    const warnings: unknown[] = [];
    const logger = createLogger({ env: 'test', logLevel: 'silent' });
    logger.warn = ((obj: unknown) => warnings.push(obj)) as typeof logger.warn;
    const error = await waitForDatabase(url, testConfig(url, { DB_CONNECT_RETRIES: '5' }), logger).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/sslrootcert file \/nonexistent\/root.crt cannot be read/);
    expect((error as Error).message).not.toMatch(/hunter22/);
    expect(warnings).toHaveLength(0);
  });

  it('exits non-zero with one clear reason, and no password, when the retries are spent', async () => {
    const server = spawnServer({
      DATABASE_URL: `postgresql://app:hunter22-secret@127.0.0.1:${REFUSING_PORT}/todo`,
      DB_CONNECT_RETRIES: '1',
      PORT: String(await freePort()),
    });
    const { code } = await server.exited;
    expect(code).toBe(1);
    const lines = server
      .output()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
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
