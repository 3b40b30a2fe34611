import { signUpUser } from '../support/api.js';
import { serverForTests } from '../support/server.js';
import { LIST_TASKS } from '../support/tasks.js';

/** The value of one sample of /metrics, by name and labels. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (wanted.every((label) => line.includes(label))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('/metrics', () => {
  const t = serverForTests({ proxied: true, env: { DB_POOL_MAX: '6' } });

  const scrape = async () => {
    const res = await t.server.get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    return res.body as string;
  };

  it('shows the pool with the same numbers as health', async () => {
    // Health probes have a connection of their own; an application query is what waits on the pool.
    await t.server.orm.em.fork().getConnection().execute('select 1');
    const { body } = await t.server.gql<{ health: { database: { pool: Record<string, number> } } }>(
      `{ health { database { pool { max total idle waiting } } } }`,
    );
    const text = await scrape();
    const pool = body.data!.health.database.pool;
    expect(sample(text, 'db_pool_max')).toBe(6);
    expect(sample(text, 'db_pool_size')).toBe(pool.total);
    expect(sample(text, 'db_pool_idle')).toBe(pool.idle);
    expect(sample(text, 'db_pool_waiting')).toBe(pool.waiting);
    expect(sample(text, 'db_pool_acquire_seconds_count')).toBeGreaterThan(0);
  });

  it('counts GraphQL operations by name, type and outcome, with durations', async () => {
    const user = await signUpUser(t.server.url);
    await user.api.ok(`query ListMine { tasks { totalCount } }`);
    await user.api.ok(`query ListMine { tasks { totalCount } }`);
    await user.api.request(`mutation Broken { createTask(input: { title: "  " }) { id } }`);
    const text = await scrape();
    expect(sample(text, 'graphql_operation_duration_seconds_count', { operation: 'ListMine', type: 'query', outcome: 'ok' })).toBe(2);
    expect(
      sample(text, 'graphql_operation_duration_seconds_count', { operation: 'Broken', type: 'mutation', outcome: 'BAD_USER_INPUT' }),
    ).toBe(1);
    expect(sample(text, 'graphql_operation_duration_seconds_count', { operation: 'SignUp', outcome: 'ok' })).toBe(1);
    expect(
      sample(text, 'http_request_duration_seconds_count', { method: 'POST', route: '/graphql', status: '200' }),
    ).toBeGreaterThanOrEqual(4);
  });

  it('counts database errors by kind', async () => {
    const user = await signUpUser(t.server.url);
    await t.proxy.setMode('refuse');
    try {
      expect(await user.api.code(LIST_TASKS, {})).toBe('DATABASE_UNAVAILABLE');
    } finally {
      await t.proxy.setMode('forward');
    }
    const text = await scrape();
    expect(sample(text, 'db_errors_total', { kind: 'transient' })).toBeGreaterThan(0);
    expect(sample(text, 'graphql_operation_duration_seconds_count', { operation: 'Tasks', outcome: 'DATABASE_UNAVAILABLE' })).toBe(1);
  });

  it('includes the process’s own metrics', async () => {
    const text = await scrape();
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(sample(text, 'nodejs_eventloop_lag_seconds')).toBeDefined();
  });
});
