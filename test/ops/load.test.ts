import { signUpUser } from '../support/api.js';
import { adminQuery } from '../support/database.js';
import { serverForTests } from '../support/server.js';
import { COMPLETE_TASK, CREATE_TASK, createTask, LIST_TASKS, UPDATE_TASK } from '../support/tasks.js';

const POOL_MAX = 5;

describe('a burst of concurrent operations (the short form of `npm run bench:load`)', () => {
  const t = serverForTests({ env: { DB_POOL_MAX: String(POOL_MAX) } });

  it('serves 600 mixed reads and writes, 150 at a time, with no error and no more connections than DB_POOL_MAX', async () => {
    const users = await Promise.all(Array.from({ length: 10 }, () => signUpUser(t.server.url)));
    const seeds = await Promise.all(users.map((user) => createTask(user.api, { title: 'seed', tags: ['load'] })));

    let peak = 0;
    /**
     * The connections seen at the peak, if it was over DB_POOL_MAX: what they were doing. Clients only: an
     * autovacuum worker on the test's database is in pg_stat_activity too (it once made the count 6). And only
     * the request pool's (application_name 'todo-graphql-server'): the health probe and the LISTEN connections
     * have their own, outside the pool.
     */
    let over: unknown[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const { rows } = await adminQuery<{ pid: number; application_name: string; state: string; backend_start: Date; query: string }>(
          `select pid, application_name, state, backend_start, left(query, 80) as query from pg_stat_activity where datname = $1 and backend_type = 'client backend'
           and application_name = 'todo-graphql-server'`,
          [t.db.name],
        );
        if (rows.length > POOL_MAX && rows.length > peak) over = rows;
        peak = Math.max(peak, rows.length);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();

    const operation = (i: number) => {
      const user = users[i % users.length]!;
      const seed = seeds[i % seeds.length]!;
      switch (i % 5) {
        case 0:
          return user.api.request(CREATE_TASK, { input: { title: `burst ${i}`, tags: ['load', `t${i % 7}`] } });
        case 1:
          return user.api.request(UPDATE_TASK, { id: seed.id, input: { description: `touched ${i}` } });
        case 2:
          return user.api.request(COMPLETE_TASK, { id: seed.id });
        case 3:
          return user.api.request(
            `{ tasks(first: 20, filter: { tagsAny: ["load"] }) { totalCount edges { node { id owner { email } } } } }`,
          );
        default:
          return user.api.request(LIST_TASKS, { first: 50 });
      }
    };
    const failures: unknown[] = [];
    for (let wave = 0; wave < 4; wave++) {
      const results = await Promise.all(Array.from({ length: 150 }, (_, i) => operation(wave * 150 + i)));
      failures.push(...results.filter((r) => r.errors || r.status !== 200));
    }
    sampling = false;
    await sampler;

    expect(failures).toEqual([]);
    expect(peak).toBeGreaterThan(0);
    expect(over).toEqual([]);
    expect(peak).toBeLessThanOrEqual(POOL_MAX);
    const { rows } = await t.db.query<{ n: number }>(`select count(*)::int as n from tasks where title like 'burst %'`);
    expect(rows[0]).toEqual({ n: 120 });
  });
});
