import type { MikroORM } from '@mikro-orm/postgresql';
import { DEV_SEED_PASSWORD, parseConfig } from '../../src/config/config.js';
import { verifyPassword } from '../../src/modules/users/password.js';
import { DatabaseSeeder, seedPassword } from '../../src/seeders/DatabaseSeeder.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { openOrm } from '../support/orm.js';

describe('DatabaseSeeder', () => {
  let db: TestDatabase;
  let orm: MikroORM;

  beforeAll(async () => {
    process.env.LOG_LEVEL = 'warn'; // the seeder reads the process's own configuration
    db = await createTestDatabase();
    orm = await openOrm(db.directUrl);
    await orm.migrator.up();
  });
  afterAll(async () => {
    await orm.close();
    await db.drop();
  });

  const snapshot = async () => ({
    users: (await db.query('select * from users order by email')).rows,
    tasks: (await db.query('select * from tasks order by title')).rows,
  });

  it('creates test@example.com with a bcrypt hash and 5 tasks covering statuses, priorities, tags and an overdue one', async () => {
    await orm.seeder.seed(DatabaseSeeder);
    const { users, tasks } = await snapshot();
    expect(users).toHaveLength(1);
    const [user] = users;
    expect(user!.email).toBe('test@example.com');
    expect(user!.password_hash).toMatch(/^\$2[aby]\$\d\d\$/);
    expect(await verifyPassword(DEV_SEED_PASSWORD, user!.password_hash)).toBe(true);

    expect(tasks).toHaveLength(5);
    expect(tasks.filter((t) => t.status === 'PENDING')).toHaveLength(2);
    expect(tasks.filter((t) => t.status === 'COMPLETED')).toHaveLength(3);
    expect(new Set(tasks.map((t) => t.priority))).toEqual(new Set(['LOW', 'MEDIUM', 'HIGH', 'URGENT']));
    expect(new Set(tasks.flatMap((t) => t.tags)).size).toBeGreaterThanOrEqual(5);
    expect(tasks.some((t) => t.tags.length > 1)).toBe(true);
    const overdue = tasks.filter((t) => t.status !== 'COMPLETED' && t.due_date && t.due_date < new Date());
    expect(overdue).toHaveLength(1);
    for (const task of tasks) expect(task.completed_at !== null).toBe(task.status === 'COMPLETED');
  });

  it('leaves exactly the same rows when run again', async () => {
    const before = await snapshot();
    await orm.seeder.seed(DatabaseSeeder);
    expect(await snapshot()).toEqual(before);
  });
});

describe('the seeded password', () => {
  it('comes from SEED_USER_PASSWORD, with a development default', () => {
    expect(seedPassword(parseConfig({ NODE_ENV: 'development' }))).toBe(DEV_SEED_PASSWORD);
    expect(seedPassword(parseConfig({ NODE_ENV: 'test', SEED_USER_PASSWORD: 'another-password' }))).toBe('another-password');
  });

  it('is refused in production when unset or left at the development default', () => {
    const prod = { NODE_ENV: 'production', DATABASE_URL: 'postgres://u:p@h/db', JWT_SECRET: 'x'.repeat(32) };
    expect(() => seedPassword(parseConfig(prod))).toThrow(/SEED_USER_PASSWORD/);
    expect(() => seedPassword(parseConfig({ ...prod, SEED_USER_PASSWORD: DEV_SEED_PASSWORD }))).toThrow(/SEED_USER_PASSWORD/);
    expect(seedPassword(parseConfig({ ...prod, SEED_USER_PASSWORD: 'a-real-one-2026' }))).toBe('a-real-one-2026');
  });
});
