import { readFileSync } from 'node:fs';
import {
  buildSchema,
  GraphQLError,
  GraphQLObjectType,
  parse,
  printType,
  type FieldNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
} from 'graphql';
import { DateTimeResolver } from 'graphql-scalars';
import { DateTimeScalar, isoDateTime } from '../../src/graphql/date-time.js';
import { decodeCursor, encodeCursor } from '../../src/modules/tasks/task.cursor.js';
import {
  ALL_COLUMNS,
  columnsFor,
  countQuery,
  FIELD_COLUMNS,
  listQuery,
  OWNER_FIELD_COLUMNS,
  whereClause,
} from '../../src/modules/tasks/task.sql.js';
import { selectedFields } from '../../src/graphql/selection.js';
import { checkPageSize, containsPattern, normalizeDescription, normalizeTags, normalizeTitle } from '../../src/modules/tasks/task.rules.js';
import { TaskPriority, TaskStatus } from '../../src/modules/tasks/task.enums.js';
import { SortDirection, TaskOrderField } from '../../src/modules/tasks/task.types.js';

const OWNER = '11111111-1111-4111-8111-111111111111';
const ID = '22222222-2222-4222-8222-222222222222';

function fieldOf(work: () => unknown): unknown {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(GraphQLError);
    expect((error as GraphQLError).extensions.code).toBe('BAD_USER_INPUT');
    return (error as GraphQLError).extensions.field;
  }
  throw new Error('expected BAD_USER_INPUT');
}

describe('task rules', () => {
  it('trims titles and counts characters, not bytes', () => {
    expect(normalizeTitle('  Buy milk \n')).toBe('Buy milk');
    expect(normalizeTitle('é'.repeat(200))).toHaveLength(200);
    expect(normalizeTitle('😀'.repeat(200))).toBe('😀'.repeat(200));
    expect(fieldOf(() => normalizeTitle('😀'.repeat(201)))).toBe('title');
    expect(fieldOf(() => normalizeTitle(' \t '))).toBe('title');
  });

  it('keeps descriptions as written, up to 10000 characters', () => {
    expect(normalizeDescription('  as is  ')).toBe('  as is  ');
    expect(normalizeDescription(null)).toBeNull();
    expect(fieldOf(() => normalizeDescription('x'.repeat(10_001)))).toBe('description');
  });

  it('normalises tags and names the field it checks', () => {
    expect(normalizeTags([' Home', 'home ', 'WORK', 'work'])).toEqual(['home', 'work']);
    expect(normalizeTags([])).toEqual([]);
    expect(fieldOf(() => normalizeTags(['ok', '']))).toBe('tags');
    expect(fieldOf(() => normalizeTags(['x'.repeat(51)], 'filter.tagsAll'))).toBe('filter.tagsAll');
  });

  it('bounds the page size', () => {
    expect(checkPageSize(1)).toBe(1);
    expect(checkPageSize(100)).toBe(100);
    for (const first of [0, 101, 1.5, Number.NaN]) expect(fieldOf(() => checkPageSize(first))).toBe('first');
  });

  it('makes LIKE patterns that match the text literally', () => {
    expect(containsPattern('100%_a\\b')).toBe('%100\\%\\_a\\\\b%');
  });
});

describe('cursors', () => {
  it('round-trip a position', () => {
    for (const [field, value] of [
      [TaskOrderField.CREATED_AT, '2026-01-02T03:04:05.678Z'],
      [TaskOrderField.DUE_DATE, null],
      [TaskOrderField.PRIORITY, 3],
      [TaskOrderField.TITLE, 'any "title", even with unicode ✓'],
      // The longest title: 200 code points, 400 UTF-16 units.
      [TaskOrderField.TITLE, '😀'.repeat(200)],
    ] as const) {
      const cursor = encodeCursor({ field, value, id: ID }, SortDirection.ASC);
      expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(decodeCursor(cursor, { field, direction: SortDirection.ASC })).toEqual({ field, value, id: ID });
    }
  });

  it('rejects a cursor it did not issue', () => {
    const forge = (parts: unknown) => Buffer.from(JSON.stringify(parts)).toString('base64url');
    for (const cursor of [
      '',
      'not base64!',
      forge({ field: 'TITLE' }),
      forge(['TITLE', 'ASC', 'ok', 'not-a-uuid']),
      forge(['TITLE', 'ASC', 'ok', ID, 'extra']),
      forge(['TITLE', 'ok', ID]),
    ]) {
      expect(fieldOf(() => decodeCursor(cursor, { field: TaskOrderField.TITLE, direction: SortDirection.ASC }))).toBe('after');
    }
    for (const [field, value] of [
      [TaskOrderField.CREATED_AT, '2026-01-02'],
      [TaskOrderField.CREATED_AT, '2026-13-45T99:99:99.999Z'],
      [TaskOrderField.CREATED_AT, '2026-02-31T00:00:00.000Z'],
      [TaskOrderField.CREATED_AT, '0000-01-01T00:00:00.000Z'],
      [TaskOrderField.DUE_DATE, '+275760-09-13T00:00:00.000Z'],
      [TaskOrderField.PRIORITY, 7],
      [TaskOrderField.DUE_DATE, 5],
    ] as const) {
      const cursor = forge([field, 'ASC', value, ID]);
      expect(fieldOf(() => decodeCursor(cursor, { field, direction: SortDirection.ASC }))).toBe('after');
    }
    const createdAt = encodeCursor({ field: TaskOrderField.CREATED_AT, value: '2026-01-02T03:04:05.678Z', id: ID }, SortDirection.DESC);
    expect(fieldOf(() => decodeCursor(createdAt, { field: TaskOrderField.UPDATED_AT, direction: SortDirection.DESC }))).toBe('after');
    expect(fieldOf(() => decodeCursor(createdAt, { field: TaskOrderField.CREATED_AT, direction: SortDirection.ASC }))).toBe('after');
  });
});

describe('the task list SQL', () => {
  it('starts from the owner, filters with the GIN-friendly array operators, and pages by keyset', () => {
    const { sql, params } = listQuery(
      OWNER,
      { status: [TaskStatus.PENDING], priority: [TaskPriority.HIGH, TaskPriority.LOW], overdue: true },
      { field: TaskOrderField.UPDATED_AT, direction: SortDirection.ASC },
      { field: TaskOrderField.UPDATED_AT, value: '2026-01-01T00:00:00.000Z', id: ID },
      21,
    );
    expect(sql).toBe(
      [
        'select t.id, t.version, t.title, t.description, t.status, t.priority, to_json(t.tags) as tags, ' +
          '(extract(epoch from t.due_date) * 1000)::float8 as due_date, (extract(epoch from t.completed_at) * 1000)::float8 as completed_at, ' +
          '(extract(epoch from t.created_at) * 1000)::float8 as created_at, (extract(epoch from t.updated_at) * 1000)::float8 as updated_at, ' +
          'u.id as owner_id, u.email as owner_email, u.name as owner_name, ' +
          '(extract(epoch from u.created_at) * 1000)::float8 as owner_created_at, (extract(epoch from u.updated_at) * 1000)::float8 as owner_updated_at',
        'from tasks t join users u on u.id = t.owner_id',
        'where t.owner_id = ?::uuid',
        '  and t.status = any(?::text[])',
        "  and (case t.priority when 'LOW' then 0 when 'MEDIUM' then 1 when 'HIGH' then 2 when 'URGENT' then 3 end) = any(?::int[])",
        "  and (t.due_date < now() and t.status <> 'COMPLETED')",
        '  and ((t.updated_at, t.id) > (?::timestamptz, ?::uuid))',
        'order by t.updated_at asc, t.id asc',
        'limit 21',
      ].join('\n'),
    );
    expect(params).toEqual([OWNER, '{"PENDING"}', '{2,0}', '2026-01-01T00:00:00.000Z', ID]);
  });

  it('finds a page of tags or search through their GIN index when they match few tasks, else through the ordering', () => {
    const { sql, params, planEachRun } = listQuery(
      OWNER,
      { tagsAny: ['Home'], tagsAll: ['a', 'b'], search: '50%' },
      { field: TaskOrderField.CREATED_AT, direction: SortDirection.DESC },
      null,
      21,
      columnsFor(['id']),
    );
    const conditions = (opaque: boolean) =>
      [
        't.owner_id = ?::uuid',
        ...['t.tags && ?::text[]', 't.tags @> ?::text[]', "(t.title || ' ' || coalesce(t.description, '')) ilike ? escape '\\'"].map((c) =>
          opaque ? `(case when ${c} then true end)` : c,
        ),
      ].join('\n  and ');
    const page = (opaque: boolean) =>
      [
        'select t.id, (extract(epoch from t.created_at) * 1000)::float8 as created_at',
        'from tasks t',
        `where ${conditions(opaque)}`,
        'order by t.created_at desc, t.id desc',
        'limit 21',
      ].join('\n');
    expect(sql).toBe(
      [
        `with probe as (select count(*) as n from (select 1 from tasks t where ${conditions(false)} limit 200) m)`,
        `select * from (${page(false)}) few where (select n from probe) < 200`,
        'union all',
        `select * from (${page(true)}) many where (select n from probe) >= 200`,
      ].join('\n'),
    );
    const values = [OWNER, '{"home"}', '{"a","b"}', '%50\\%%'];
    expect(params).toEqual([...values, ...values, ...values]);
    expect(planEachRun).toBe(true);
  });

  it('sorts priority by rank and titles by their lower case in byte order, each as its index does', () => {
    const byPriority = listQuery(OWNER, null, { field: TaskOrderField.PRIORITY, direction: SortDirection.DESC }, null, 5);
    expect(byPriority.sql).toContain(
      "order by (case t.priority when 'LOW' then 0 when 'MEDIUM' then 1 when 'HIGH' then 2 when 'URGENT' then 3 end) desc, t.id desc",
    );
    const byTitle = listQuery(
      OWNER,
      null,
      { field: TaskOrderField.TITLE, direction: SortDirection.ASC },
      { field: TaskOrderField.TITLE, value: 'Émile', id: ID },
      5,
    );
    expect(byTitle.sql).toContain(
      'and ((lower(t.title) collate "C", t.id) > (lower(?::text) collate "C", ?::uuid))\norder by lower(t.title) collate "C" asc, t.id asc',
    );
  });

  it('reads dated tasks, then undated ones, as two ranges for the DUE_DATE order, and continues inside the undated', () => {
    const first = listQuery(OWNER, null, { field: TaskOrderField.DUE_DATE, direction: SortDirection.DESC }, null, 5, columnsFor(['id']));
    expect(first.sql).toBe(
      [
        'select * from ((select t.id, (extract(epoch from t.due_date) * 1000)::float8 as due_date',
        'from tasks t',
        'where t.owner_id = ?::uuid',
        '  and t.due_date is not null',
        'order by t.due_date desc, t.id desc',
        'limit 5)',
        'union all',
        '(select t.id, (extract(epoch from t.due_date) * 1000)::float8 as due_date',
        'from tasks t',
        'where t.owner_id = ?::uuid',
        '  and t.due_date is null',
        'order by t.due_date desc, t.id desc',
        'limit 5)) p',
        'order by p.due_date is null, p.due_date desc, p.id desc',
        'limit 5',
      ].join('\n'),
    );
    expect(first.params).toEqual([OWNER, OWNER]);
    const inNulls = listQuery(
      OWNER,
      null,
      { field: TaskOrderField.DUE_DATE, direction: SortDirection.DESC },
      { field: TaskOrderField.DUE_DATE, value: null, id: ID },
      5,
    );
    expect(inNulls.sql).toContain('and t.due_date is null\n  and t.id < ?::uuid\norder by t.due_date desc, t.id desc');
    expect(inNulls.sql).not.toContain('union');
  });

  it('counts with the same conditions', () => {
    expect(countQuery(OWNER, { status: [] })).toEqual({
      sql: 'select count(*)::int as total from tasks t\nwhere t.owner_id = ?::uuid\n  and t.status = any(?::text[])',
      params: [OWNER, '{}'],
      planEachRun: true,
    });
  });

  it('quotes array elements so that no tag can break out of the literal', () => {
    const { params } = whereClause(OWNER, { tagsAny: ['a"b', 'c\\d', 'e,f}'] });
    expect(params[1]).toBe('{"a\\"b","c\\\\d","e,f}"}');
  });
});

describe('the columns a page reads', () => {
  /** What `selectedFields` is given for the first field of `document`'s operation. */
  const resolving = (document: string) => {
    const ast = parse(document);
    const operation = ast.definitions.find((d): d is OperationDefinitionNode => d.kind === 'OperationDefinition')!;
    const fragments = Object.fromEntries(
      ast.definitions.filter((d): d is FragmentDefinitionNode => d.kind === 'FragmentDefinition').map((d) => [d.name.value, d]),
    );
    return { fieldNodes: [operation.selectionSet.selections[0] as FieldNode], fragments };
  };

  it('are the selected fields of the nodes, through aliases, fragments and inline fragments', () => {
    const info = resolving(`{
      tasks { totalCount edges { cursor node { id t: title ...More ... on Task { tags ... on Task { owner { email } } } } } pageInfo { endCursor } }
      other: tasks { edges { node { description } } }
    }
    fragment More on Task { status ...Late }
    fragment Late on Task { isOverdue title @skip(if: true) }`);
    expect([...selectedFields(info, ['edges', 'node'])].sort()).toEqual(['id', 'isOverdue', 'owner', 'status', 'tags', 'title']);
    expect([...selectedFields(info, ['edges'])].sort()).toEqual(['cursor', 'node']);
    expect([...columnsFor(selectedFields(info, ['edges', 'node']), selectedFields(info, ['edges', 'node', 'owner']))].sort()).toEqual([
      'due_date',
      'owner',
      'owner_email',
      'status',
      'tags',
      'title',
    ]);
    // Without the owner's own selection, every column of the owner.
    expect([...columnsFor(['owner'])].sort()).toEqual(['owner', 'owner_created_at', 'owner_email', 'owner_name', 'owner_updated_at']);
  });

  it('read of the owner what its selection asks, every column for a field of User they do not know', () => {
    expect([...columnsFor(['id', 'owner'], ['id'])]).toEqual(['owner']);
    expect([...columnsFor(['owner'], ['createdAt', '__typename'])].sort()).toEqual(['owner', 'owner_created_at']);
    expect([...columnsFor(['owner'], ['email', 'somethingNew'])].sort()).toEqual([
      'owner',
      'owner_created_at',
      'owner_email',
      'owner_name',
      'owner_updated_at',
    ]);
    const user = buildSchema(readFileSync('schema.graphql', 'utf8')).getType('User') as GraphQLObjectType;
    expect(Object.keys(user.getFields()).filter((field) => !OWNER_FIELD_COLUMNS[field])).toEqual([]);
    const { sql } = listQuery(
      OWNER,
      null,
      { field: TaskOrderField.CREATED_AT, direction: SortDirection.DESC },
      null,
      21,
      columnsFor(['id', 'owner'], ['id', 'email']),
    );
    expect(sql.split('\n').slice(0, 2)).toEqual([
      'select t.id, (extract(epoch from t.created_at) * 1000)::float8 as created_at, u.id as owner_id, u.email as owner_email',
      'from tasks t join users u on u.id = t.owner_id',
    ]);
  });

  it('walk each fragment once per level, however often it is spread', () => {
    // 2^24 paths through the spreads, 25 fragments to walk: walking every path would not end within the test's time.
    const fragments = Array.from({ length: 24 }, (_, i) => `fragment F${i} on Task { id ...F${i + 1} ...F${i + 1} }`).join('\n');
    const info = resolving(`{ tasks { edges { node { ...F0 } } } }\n${fragments}\nfragment F24 on Task { title }`);
    expect([...selectedFields(info, ['edges', 'node'])].sort()).toEqual(['id', 'title']);
  });

  it('are every column for a field they do not know, and cover every field of Task in the committed schema', () => {
    expect(columnsFor(['id', 'somethingNew'])).toBe(ALL_COLUMNS);
    const task = buildSchema(readFileSync('schema.graphql', 'utf8')).getType('Task') as GraphQLObjectType;
    expect(Object.keys(task.getFields()).filter((field) => !FIELD_COLUMNS[field])).toEqual([]);
  });

  it('leave the users out when the owner is not read, and keep the column the cursors of the order read', () => {
    const { sql } = listQuery(
      OWNER,
      null,
      { field: TaskOrderField.UPDATED_AT, direction: SortDirection.ASC },
      null,
      21,
      columnsFor(['id', 'title']),
    );
    expect(sql.split('\n').slice(0, 2)).toEqual([
      'select t.id, t.title, (extract(epoch from t.updated_at) * 1000)::float8 as updated_at',
      'from tasks t',
    ]);
  });
});

describe('the DateTime scalar', () => {
  it('answers with the ISO string graphql-scalars would have serialised, and refuses what it refuses', () => {
    const at = new Date('2026-12-02T10:15:30.123Z');
    for (const value of [at, '2026-12-02T10:15:30.123Z', '2026-12-02T11:15:30.123+01:00', at.getTime()]) {
      const serialised = DateTimeScalar.serialize(value);
      expect(serialised).toBe('2026-12-02T10:15:30.123Z');
      expect(serialised).toBe(JSON.parse(JSON.stringify(DateTimeResolver.serialize(value))));
    }
    for (const value of [new Date(Number.NaN), 'yesterday', true, {}]) {
      expect(() => DateTimeScalar.serialize(value)).toThrow(GraphQLError);
    }
    expect(DateTimeScalar.parseValue('2026-12-02T10:15:30.123Z')).toEqual(at);
    expect(printType(DateTimeScalar)).toBe(printType(DateTimeResolver));
  });

  it('writes a date as toISOString does, from year 0000 to 9999, and leaves the others to it', () => {
    const edges = [
      '0000-01-01T00:00:00.000Z',
      '0000-02-29T23:59:59.999Z',
      '1582-10-15T00:00:00.000Z',
      '1899-12-31T23:59:59.999Z',
      '1900-03-01T00:00:00.000Z',
      '1969-12-31T23:59:59.999Z',
      '1970-01-01T00:00:00.000Z',
      '2000-02-29T12:00:00.000Z',
      '2024-12-31T23:59:59.999Z',
      '2100-02-28T00:00:00.001Z',
      '9999-12-31T23:59:59.999Z',
    ];
    for (const text of edges) expect(isoDateTime(new Date(text))).toBe(text);
    // Every 97th day of the 10,000 years and every day around two leap centuries, each at a random time of day.
    const days = [
      ...Array.from({ length: 37_654 }, (_, i) => -719_528 + 97 * i),
      ...Array.from({ length: 3_000 }, (_, i) => -25_567 + i),
      ...Array.from({ length: 3_000 }, (_, i) => 10_500 + i),
    ];
    for (const day of days) {
      const at = new Date(day * 86_400_000 + Math.floor(Math.random() * 86_400_000));
      if (isoDateTime(at) !== at.toISOString()) expect(isoDateTime(at)).toBe(at.toISOString());
    }
    for (const at of [
      new Date(Date.UTC(-1, 11, 31, 23, 59, 59, 999)),
      new Date(Date.UTC(10_000, 0, 1)),
      new Date(8.64e15),
      new Date(Number.NaN),
    ]) {
      expect(isoDateTime(at)).toBeUndefined();
    }
    expect(DateTimeScalar.serialize(new Date(Date.UTC(10_000, 0, 1)))).toBe('+010000-01-01T00:00:00.000Z');
  });
});
