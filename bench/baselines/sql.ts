// The hand-written SQL both baselines run: what a careful engineer would send for each scenario.
// Baselines live here only; the server never imports them.
import { jwtVerify } from 'jose';
import pg from 'pg';

// Without the server's change log (the trigger on tasks): the baselines measure the write alone, as the
// targets were set against.
export const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.DB_POOL_MAX ?? 10),
  options: '-c todo.log_task_changes=off',
});
const key = new TextEncoder().encode(process.env.JWT_SECRET);

/** The same check the server makes: an HS256 JWT whose subject is the user id. */
export async function userIdFrom(authorization: string | undefined): Promise<string | null> {
  const token = /^Bearer (\S+)$/.exec(authorization ?? '')?.[1];
  if (!token) return null;
  try {
    const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'] });
    return typeof payload.sub === 'string' ? payload.sub : null;
  } catch {
    return null;
  }
}

export async function health() {
  const { rows } = await pool.query(
    `select current_setting('server_version') as version, to_regclass('mikro_orm_migrations') is not null as tracked`,
  );
  await pool.query('select name from mikro_orm_migrations order by id');
  return { status: rows[0].version ? 'OK' : 'DOWN' };
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

interface Row {
  id: string;
  title: string;
  description: string | null;
  status: string;
  priority: string;
  tags: string[];
  due_date: Date | null;
  completed_at: Date | null;
  created_at: Date;
  updated_at: Date;
  owner_id: string;
  owner_email: string;
}

function node(row: Row) {
  return {
    id: row.id,
    title: row.title,
    description: row.description,
    status: row.status,
    priority: row.priority,
    tags: row.tags,
    dueDate: iso(row.due_date),
    completedAt: iso(row.completed_at),
    isOverdue: row.due_date !== null && row.due_date.getTime() < Date.now() && row.status !== 'COMPLETED',
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
    owner: { id: row.owner_id, email: row.owner_email },
  };
}

/** One page, newest first, owners joined; the count only when asked for. */
export async function tasks(
  ownerId: string,
  first: number,
  filter: { tagsAny?: string[]; status?: string[] } | undefined,
  withTotal: boolean,
) {
  const where = ['t.owner_id = $1'];
  const params: unknown[] = [ownerId];
  if (filter?.tagsAny) {
    params.push(filter.tagsAny);
    where.push(`t.tags && $${params.length}::text[]`);
  }
  if (filter?.status) {
    params.push(filter.status);
    where.push(`t.status = any($${params.length}::text[])`);
  }
  const page = pool.query<Row>(
    `select t.*, u.email as owner_email from tasks t join users u on u.id = t.owner_id
     where ${where.join(' and ')} order by t.created_at desc, t.id desc limit ${first + 1}`,
    params,
  );
  const total = withTotal ? pool.query<{ n: number }>(`select count(*)::int as n from tasks t where ${where.join(' and ')}`, params) : null;
  const { rows } = await page;
  const edges = rows.slice(0, first).map((row) => ({ cursor: row.id, node: node(row) }));
  return {
    edges,
    pageInfo: { hasNextPage: rows.length > first, endCursor: edges.at(-1)?.cursor ?? null },
    totalCount: total ? (await total).rows[0]!.n : null,
  };
}

export async function createTask(ownerId: string, title: string) {
  const { rows } = await pool.query<Row>(
    `insert into tasks (id, created_at, updated_at, title, status, priority, tags, owner_id)
     values (gen_random_uuid(), now(), now(), $1, 'PENDING', 'MEDIUM', '{}', $2) returning *`,
    [title.trim(), ownerId],
  );
  const row = rows[0]!;
  return { id: row.id, title: row.title, status: row.status };
}
