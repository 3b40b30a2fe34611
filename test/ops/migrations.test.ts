import { MIGRATIONS_DIR } from '../../src/db/orm-options.js';
import { shippedMigrations } from '../../src/db/migration-files.js';
import { migrateUnderLock, migrationUrl } from '../../src/db/migrate.js';
import { createLogger } from '../../src/observability/logger.js';
import { createTestDatabase, databaseForTests, type TestDatabase } from '../support/database.js';
import { openOrm, testConfig } from '../support/orm.js';
import { spawnServer } from '../support/process.js';
import { freePort } from '../../src/embedded/embedded.js';
import { PROJECT_ROOT } from '../../src/config/app-version.js';

describe('migrations at start-up', () => {
  let db: TestDatabase;

  beforeEach(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    await db.drop();
  });

  it('runs exactly once when several instances start together', async () => {
    const config = testConfig(db.url);
    const logger = createLogger({ env: 'test', logLevel: 'silent' });
    const results = await Promise.all(Array.from({ length: 4 }, () => migrateUnderLock(config, db.directUrl, logger)));
    const shipped = shippedMigrations(MIGRATIONS_DIR);
    expect(results.flat()).toHaveLength(shipped.length);
    expect(results.filter((applied) => applied.length > 0)).toHaveLength(1);
    const { rows } = await db.query<{ name: string }>('select name from mikro_orm_migrations');
    expect(rows).toHaveLength(shipped.length);
  });

  it('are left to a deploy step with MIGRATE_ON_START=false', async () => {
    const port = await freePort();
    const server = spawnServer({ DATABASE_URL: db.url, DATABASE_DIRECT_URL: db.directUrl, MIGRATE_ON_START: 'false', PORT: String(port) });
    try {
      await server.waitFor(/"msg":"server ready"/);
      const { rows } = await db.query(`select to_regclass('mikro_orm_migrations') as t, to_regclass('tasks') as tasks`);
      expect(rows[0]).toEqual({ t: null, tasks: null });
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });
});

describe('the MikroORM CLI', () => {
  const t = databaseForTests();

  it('migrates and seeds through mikro-orm.config.ts', async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const run = (args: string[], env: Record<string, string | undefined> = {}) =>
      promisify(execFile)(process.execPath, ['node_modules/@mikro-orm/cli/cli.js', ...args], {
        cwd: PROJECT_ROOT,
        env: Object.fromEntries(
          Object.entries({
            ...process.env,
            NODE_OPTIONS: '',
            NODE_ENV: 'test',
            DATABASE_URL: t.db.url,
            DATABASE_DIRECT_URL: t.db.directUrl,
            LOG_LEVEL: 'warn',
            BCRYPT_ROUNDS: '4',
            ...env,
          }).filter(([, value]) => value !== undefined),
        ),
      });
    const pooled = 'postgresql://app:secret@ep-cool-name-123456-pooler.eu-central-1.aws.neon.tech/todo?sslmode=require';
    const refused = await run(['migration:up'], { DATABASE_URL: pooled, DATABASE_DIRECT_URL: undefined }).catch(
      (error: { stderr: string; stdout: string }) => error,
    );
    expect('stderr' in refused ? `${refused.stdout}${refused.stderr}` : '').toMatch(
      /Set DATABASE_DIRECT_URL to the direct \(unpooled\) URL/,
    );
    expect(JSON.stringify(refused)).not.toContain('secret');
    expect((await run(['migration:pending'])).stdout).toMatch(/Migration\d+_initial/);
    await run(['migration:up']);
    expect((await run(['migration:list'])).stdout).toMatch(/Migration\d+_initial/);
    await run(['seeder:run']);
    const { rows } = await t.db.query<{ n: number }>('select count(*)::int as n from tasks');
    expect(rows[0]).toEqual({ n: 5 });
  });
});

describe('migrations and timeouts', () => {
  const t = databaseForTests();

  it('run without the statement timeout that bounds requests, so a long index build is not cut off', async () => {
    const env = { DB_STATEMENT_TIMEOUT_MS: '300' };
    const requests = await openOrm(t.db.directUrl, env);
    const migrations = await openOrm(t.db.directUrl, env, 'migrations');
    try {
      await expect(requests.em.getConnection().execute('select pg_sleep(0.6)')).rejects.toThrow(/statement timeout/);
      await expect(migrations.em.getConnection().execute('select pg_sleep(0.6)')).resolves.toBeDefined();
      expect(await migrations.em.getConnection().execute('show statement_timeout')).toEqual([{ statement_timeout: '0' }]);
    } finally {
      await requests.close();
      await migrations.close();
    }
  });

  it('refuse a pooler’s URL, naming what to set instead', () => {
    expect(() => migrationUrl('postgresql://u:p@ep-x-123-pooler.eu-central-1.aws.neon.tech/t.db')).toThrow(/DATABASE_DIRECT_URL/);
    expect(migrationUrl('postgresql://u:p@ep-x-123.eu-central-1.aws.neon.tech/t.db')).toBe(
      'postgresql://u:p@ep-x-123.eu-central-1.aws.neon.tech/t.db',
    );
  });
});
