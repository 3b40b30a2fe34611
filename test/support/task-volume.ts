import type pg from 'pg';

/**
 * `count` tasks for each of `owners`, as years of use leave them, written in one statement without logging: seven
 * in ten completed, one in seven with a due date within about a year and a half either side of today, three in four with
 * two tags of a pool of 20 (independently of each other), a third with a description, titles from a small vocabulary with "report" in one in fifty, created
 * over three years. Used by the plan tests and `npm run bench:scale`.
 */
export async function seedTasks(db: Pick<pg.Client, 'query'>, owners: string[], count: number): Promise<void> {
  await db.query(`set todo.log_task_changes = off`);
  // h(k): a hash of the task's number, so that status, priority, due date and tags do not go together.
  const h = (k: number) => `((hashint4(i * ${k}) & 2147483647) % 1000)`;
  await db.query(
    `insert into tasks (id, created_at, updated_at, title, description, status, priority, tags, due_date, completed_at, owner_id)
     select gen_random_uuid(), c, c + (random() * interval '30 days'),
       (array['Call','Write','Review','Plan','Fix','Buy','Send','Read'])[1 + (i % 8)] || ' ' ||
         (case when i % 50 = 7 then 'report' else (array['invoice','garden','car','slides','budget','tickets','notes'])[1 + (i % 7)] end) || ' ' || i,
       case when i % 3 = 0 then 'details of ' || i end,
       s, (array['LOW','MEDIUM','HIGH','URGENT'])[1 + ${h(3)} % 4],
       case when ${h(17)} % 4 = 0 then '{}'::text[] else array['tag-' || (${h(31)} % 20), 'tag-' || (${h(37)} % 20)] end,
       case when ${h(13)} % 7 = 0 then now() + (${h(41)} - 500) * interval '1 day' end,
       case when s = 'COMPLETED' then c + interval '1 day' end,
       o
     from unnest($1::uuid[]) o, generate_series(1, $2) i,
       lateral (select now() - (i::float8 / $2) * interval '3 years' as c,
         case when ${h(7)} % 10 < 7 then 'COMPLETED' when ${h(7)} % 10 < 9 then 'PENDING' else 'IN_PROGRESS' end as s) x`,
    [owners, count],
  );
  await db.query(`reset todo.log_task_changes`);
}

/** `users` users (emails `<prefix><n>@example.com`) with `tasks` tasks each, a hundred users a statement. */
export async function seedOtherUsers(db: Pick<pg.Client, 'query'>, users: number, tasks: number, prefix = 'other'): Promise<void> {
  const { rows } = await db.query<{ id: string }>(
    `insert into users (id, email, password_hash, created_at, updated_at)
     select gen_random_uuid(), $2 || i || '@example.com', 'x', now(), now() from generate_series(1, $1) i returning id`,
    [users, prefix],
  );
  for (let i = 0; i < rows.length; i += 100)
    await seedTasks(
      db,
      rows.slice(i, i + 100).map((row) => row.id),
      tasks,
    );
}
