import type { MikroORM } from '@mikro-orm/postgresql';
import pg from 'pg';
import { numbered } from '../../src/db/driver/prepared.js';
import { positionOf } from '../../src/modules/tasks/task.cursor.js';
import { TaskPriority, TaskStatus } from '../../src/modules/tasks/task.enums.js';
import { taskRecord, type TaskRow } from '../../src/modules/tasks/task.record.js';
import { countQuery, listQuery, type Sql } from '../../src/modules/tasks/task.sql.js';
import { SortDirection, TaskOrderField, type TaskFilter, type TaskOrder } from '../../src/modules/tasks/task.types.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { openOrm } from '../support/orm.js';
import { seedOtherUsers, seedTasks } from '../support/task-volume.js';

/** A page's worth of rows, a few times over: what a page may read or sort (pages of 20, one more to see the next). */
const FEW_PAGES = 200;

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  Plans?: PlanNode[];
}

/** What a plan does to `tasks`: whether it scans all of it, and how many rows it sorts and reads at most. */
function shapeOf(root: PlanNode) {
  const shape = { seqScan: false, sorted: 0, bitmapRows: 0, read: 0, nodes: new Set<string>() };
  const walk = (node: PlanNode) => {
    shape.nodes.add(node['Node Type']);
    const rows =
      (node['Actual Rows'] + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0)) * node['Actual Loops'];
    if (node['Relation Name'] === 'tasks') {
      if (node['Node Type'] === 'Seq Scan') shape.seqScan = true;
      if (node['Node Type'] === 'Bitmap Heap Scan') shape.bitmapRows = Math.max(shape.bitmapRows, rows);
      shape.read += rows;
    }
    if (node['Node Type'] === 'Sort' || node['Node Type'] === 'Incremental Sort') {
      const input = node.Plans?.[0];
      shape.sorted = Math.max(shape.sorted, input ? input['Actual Rows'] * input['Actual Loops'] : 0);
    }
    node.Plans?.forEach(walk);
  };
  walk(root);
  return shape;
}

const ORDERS: TaskOrder[] = Object.values(TaskOrderField).flatMap((field) =>
  [SortDirection.ASC, SortDirection.DESC].map((direction) => ({ field, direction })),
);
const SOON = new Date(Date.now() + 90 * 86_400_000);
const LATELY = new Date(Date.now() - 30 * 86_400_000);
const FILTERS: Record<string, TaskFilter> = {
  'status PENDING': { status: [TaskStatus.PENDING] },
  'status open': { status: [TaskStatus.PENDING, TaskStatus.IN_PROGRESS] },
  'priority URGENT': { priority: [TaskPriority.URGENT] },
  overdue: { overdue: true },
  'not overdue': { overdue: false },
  'due window': { dueAfter: LATELY, dueBefore: SOON },
  tagsAny: { tagsAny: ['tag-3', 'tag-4'] },
  tagsAll: { tagsAll: ['tag-3', 'tag-1'] },
  'search, common': { search: 'report' },
  'search, rare': { search: 'details of 4242' },
};

// Plans do not depend on a pooler: the run behind PgBouncer (TEST_PGBOUNCER) skips the minute of seeding.
const describePlans = process.env.TEST_PGBOUNCER ? describe.skip : describe;

describePlans('the plans of a page, for a user of 100,000 tasks among 2 million rows', () => {
  let db: TestDatabase;
  let orm: MikroORM;
  let owner: string;
  const explain = async ({ sql, params }: Sql) => {
    const { rows } = await db.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`explain (analyze, format json) ${numbered(sql)}`, params);
    return shapeOf(rows[0]!['QUERY PLAN'][0].Plan);
  };
  /** The cursor after the row at `offset` of the owner's tasks in `order`, as a page ending there would give. */
  const cursorAt = async (order: TaskOrder, offset: number) => {
    const { sql, params } = listQuery(owner, null, order, null, offset + 1);
    const rows = (await db.query<TaskRow>(numbered(sql), params)).rows;
    return positionOf(taskRecord(rows.at(-1)!, { id: owner }), order.field);
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    orm = await openOrm(db.directUrl);
    await orm.migrator.up();
    owner = (
      await db.query<{ id: string }>(
        `insert into users (id, email, password_hash, created_at, updated_at) values (gen_random_uuid(), 'power@example.com', 'x', now(), now()) returning id`,
      )
    ).rows[0]!.id;
    const client = new pg.Client({ connectionString: db.directUrl });
    await client.connect();
    try {
      // Written before the indexes are built, as a table that grew before this release would be: much faster.
      const { rows: indexes } = await client.query<{ name: string; definition: string }>(
        `select indexrelid::regclass::text as name, pg_get_indexdef(indexrelid) as definition from pg_index
         where indrelid = 'tasks'::regclass and not indisprimary`,
      );
      for (const { name } of indexes) await client.query(`drop index "${name}"`);
      await seedTasks(client, [owner], 100_000);
      await seedOtherUsers(client, 1_900, 1_000);
      for (const { definition } of indexes) await client.query(definition);
      await client.query('vacuum analyze tasks');
    } finally {
      await client.end();
    }
  }, 600_000);
  afterAll(async () => {
    await orm?.close();
    await db?.drop();
  });

  it('read only the rows they return, for every ordering both ways, from the first page to the last', async () => {
    const report: string[] = [];
    for (const order of ORDERS) {
      for (const [page, offset] of [
        ['first', null],
        ['second', 20],
        ['last', 99_990],
      ] as const) {
        const after = offset === null ? null : await cursorAt(order, offset);
        const shape = await explain(listQuery(owner, null, order, after, 21));
        report.push(
          `${order.field} ${order.direction}, ${page} page: read ${shape.read}, sorted ${shape.sorted}, ${[...shape.nodes].join(', ')}`,
        );
        expect({
          order,
          page,
          seqScan: shape.seqScan,
          bitmap: shape.bitmapRows > 0,
          sorted: shape.sorted <= 2 * 21,
          read: shape.read <= 2 * 21,
        }).toEqual({
          order,
          page,
          seqScan: false,
          bitmap: false,
          sorted: true,
          read: true,
        });
      }
    }
    process.stdout.write(`${report.join('\n')}\n`);
  }, 120_000);

  it('never scan the table, nor sort or fetch by bitmap more than a few pages of rows, for every filter in every ordering', async () => {
    const report: string[] = [];
    const failures: string[] = [];
    for (const [name, filter] of Object.entries(FILTERS)) {
      for (const order of ORDERS.filter((o) => o.direction === SortDirection.DESC || o.field === TaskOrderField.DUE_DATE)) {
        const shape = await explain(listQuery(owner, filter, order, null, 21));
        const line = `${name}, ${order.field} ${order.direction}: read ${shape.read}, sorted ${shape.sorted}, bitmap ${shape.bitmapRows}, ${[...shape.nodes].join(', ')}`;
        report.push(line);
        if (shape.seqScan || shape.sorted > FEW_PAGES || shape.bitmapRows > FEW_PAGES) failures.push(line);
      }
    }
    process.stdout.write(`${report.join('\n')}\n`);
    expect(failures).toEqual([]);
  }, 300_000);

  it('count from an index alone, without a filter and by status', async () => {
    for (const filter of [null, { status: [TaskStatus.PENDING] }]) {
      const shape = await explain(countQuery(owner, filter));
      expect({ filter, seqScan: shape.seqScan, nodes: [...shape.nodes].filter((node) => node.includes('Scan')) }).toEqual({
        filter,
        seqScan: false,
        nodes: ['Index Only Scan'],
      });
    }
  });
});
