import { readFileSync } from 'node:fs';
import { isEnumType, isInputObjectType, isObjectType, isSpecifiedScalarType } from 'graphql';
import { join } from 'node:path';
import type { MikroORM } from '@mikro-orm/postgresql';
import { PROJECT_ROOT } from '../../src/config/app-version.js';
import { buildAppSchema, printAppSchema } from '../../src/schema.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { openOrm } from '../support/orm.js';

describe('database schema', () => {
  let db: TestDatabase;
  let orm: MikroORM;

  beforeAll(async () => {
    db = await createTestDatabase();
    orm = await openOrm(db.directUrl);
    await orm.migrator.up();
  });
  afterAll(async () => {
    await orm.close();
    await db.drop();
  });

  it('matches the entities exactly once the migrations have run (MikroORM schema check)', async () => {
    const diff = await orm.schema.getUpdateSchemaSQL({ wrap: false });
    expect(diff.trim()).toBe('');
    expect(await orm.migrator.checkSchema()).toBe(false);
  });

  it('migrates down to nothing and up again', async () => {
    await orm.migrator.down({ to: 0 });
    const { rows } = await db.query(`select to_regclass('tasks') as tasks, to_regclass('users') as users`);
    expect(rows[0]).toEqual({ tasks: null, users: null });
    await orm.migrator.up();
    expect(await orm.schema.getUpdateSchemaSQL({ wrap: false })).toBe('');
  });

  it('leads every index of tasks with the owner, one for each ordering and filter of a page', async () => {
    const { rows } = await db.query<{ indexname: string; indexdef: string }>(
      `select indexname, indexdef from pg_indexes where tablename = 'tasks' order by indexname`,
    );
    const defs = Object.fromEntries(rows.map((r) => [r.indexname, r.indexdef.replace(/^.* USING /, '')]));
    expect(defs).toEqual({
      tasks_pkey: 'btree (id)',
      tasks_owner_created_at_idx: 'btree (owner_id, created_at, id)',
      tasks_owner_updated_at_idx: 'btree (owner_id, updated_at, id)',
      tasks_owner_due_date_idx: 'btree (owner_id, due_date, id)',
      tasks_owner_open_due_date_idx: "btree (owner_id, due_date, id) WHERE (status <> 'COMPLETED'::text)",
      tasks_owner_status_idx: 'btree (owner_id, status)',
      tasks_owner_priority_rank_idx:
        "btree (owner_id, (\nCASE priority\n    WHEN 'LOW'::text THEN 0\n    WHEN 'MEDIUM'::text THEN 1\n    WHEN 'HIGH'::text THEN 2\n    WHEN 'URGENT'::text THEN 3\n    ELSE NULL::integer\nEND), id)",
      tasks_owner_title_idx: 'btree (owner_id, lower((title)::text) COLLATE "C", id)',
      tasks_owner_tags_idx: 'gin (owner_id, tags)',
      tasks_owner_search_idx: "gin (owner_id, ((((title)::text || ' '::text) || COALESCE(description, ''::text))) gin_trgm_ops)",
    });
  });

  describe('constraints the database holds', () => {
    const user = (email: string) =>
      db.query<{ id: string }>(
        `insert into users (id, created_at, updated_at, email, password_hash) values (gen_random_uuid(), now(), now(), $1, 'x') returning id`,
        [email],
      );
    const task = (ownerId: string, columns: Record<string, unknown> = {}) => {
      const values = { title: 'A task', ...columns };
      const names = Object.keys(values);
      return db.query(
        `insert into tasks (id, created_at, updated_at, owner_id, ${names.join(', ')})
         values (gen_random_uuid(), now(), now(), $1, ${names.map((_, i) => `$${i + 2}`).join(', ')})`,
        [ownerId, ...Object.values(values)],
      );
    };

    it('keeps emails unique and normalised, so they compare case-insensitively', async () => {
      await user('someone@example.com');
      await expect(user('someone@example.com')).rejects.toMatchObject({ code: '23505' });
      await expect(user('Someone@Example.com')).rejects.toMatchObject({ code: '23514' });
    });

    it('refuses blank or overlong titles, bad enum values, too many tags and a completedAt out of step', async () => {
      const { rows } = await user('rules@example.com');
      const owner = rows[0]!.id;
      await expect(task(owner, { title: '   ' })).rejects.toMatchObject({ code: '23514' });
      await expect(task(owner, { title: 'x'.repeat(201) })).rejects.toMatchObject({ code: '22001' });
      await expect(task(owner, { status: 'DONE' })).rejects.toMatchObject({ code: '23514' });
      await expect(task(owner, { priority: 'CRITICAL' })).rejects.toMatchObject({ code: '23514' });
      await expect(task(owner, { tags: Array.from({ length: 21 }, (_, i) => `t${i}`) })).rejects.toMatchObject({ code: '23514' });
      await expect(task(owner, { description: 'x'.repeat(10_001) })).rejects.toMatchObject({ code: '23514' });
      await expect(task(owner, { status: 'COMPLETED' })).rejects.toMatchObject({ code: '23514' });
      await expect(task(owner, { completed_at: new Date() })).rejects.toMatchObject({ code: '23514' });
      await task(owner, { status: 'COMPLETED', completed_at: new Date(), tags: ['a', 'b'] });
    });

    it('deletes a user’s tasks with the user', async () => {
      const { rows } = await user('leaving@example.com');
      await task(rows[0]!.id);
      await task(rows[0]!.id);
      await db.query('delete from users where id = $1', [rows[0]!.id]);
      const { rows: left } = await db.query('select count(*)::int as n from tasks where owner_id = $1', [rows[0]!.id]);
      expect(left[0]).toEqual({ n: 0 });
    });
  });
});

describe('schema.graphql', () => {
  it('is exactly what the code generates (run `npm run schema:emit` after changing the schema)', async () => {
    const committed = readFileSync(join(PROJECT_ROOT, 'schema.graphql'), 'utf8');
    expect(printAppSchema(await buildAppSchema())).toBe(committed);
  });

  it('describes every type, field, argument, input field and enum value, for Sandbox and editors', async () => {
    const schema = await buildAppSchema();
    const undescribed: string[] = [];
    const check = (name: string, description: string | null | undefined) => {
      if (!description?.trim()) undescribed.push(name);
    };
    for (const type of Object.values(schema.getTypeMap())) {
      if (type.name.startsWith('__') || isSpecifiedScalarType(type)) continue;
      check(type.name, type.description);
      if (isObjectType(type) || isInputObjectType(type)) {
        for (const field of Object.values(type.getFields())) {
          check(`${type.name}.${field.name}`, field.description);
          for (const arg of 'args' in field ? field.args : []) check(`${type.name}.${field.name}(${arg.name})`, arg.description);
        }
      }
      if (isEnumType(type)) for (const value of type.getValues()) check(`${type.name}.${value.name}`, value.description);
    }
    expect(undescribed).toEqual([]);
  });
});
