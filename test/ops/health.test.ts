import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { signUpUser, type ApiResult } from '../support/api.js';
import { serverForTests } from '../support/server.js';
import { LIST_TASKS } from '../support/tasks.js';
import { shippedMigrations } from '../../src/db/migration-files.js';
import { MIGRATIONS_DIR } from '../../src/db/orm-options.js';

/** Every migration the project ships, oldest first (the health report names them as MikroORM records them). */
const SHIPPED = shippedMigrations(MIGRATIONS_DIR);

const HEALTH = `{ health { status version uptimeSeconds checkedAt
  database { connected latencyMs serverVersion error pool { max total idle waiting } }
  migrations { upToDate applied pending latest } } }`;

interface HealthAnswer {
  health: {
    status: string;
    database: {
      connected: boolean;
      latencyMs: number | null;
      serverVersion: string | null;
      error: string | null;
      pool: Record<string, number>;
    };
    migrations: { upToDate: boolean; applied: number; pending: string[]; latest: string | null };
  };
}

describe('health through a proxy that can cut or freeze the database', () => {
  const t = serverForTests({ proxied: true, env: { DB_POOL_MAX: '4' } });

  it('reports OK with the live pool, the server version and the applied migrations', async () => {
    const { status, body } = await t.server.gql<HealthAnswer>(HEALTH);
    expect(status).toBe(200);
    const health = body.data!.health;
    expect(health).toMatchObject({
      status: 'OK',
      version: expect.any(String),
      database: { connected: true, error: null, serverVersion: expect.stringMatching(/^\d+/) },
      migrations: { upToDate: true, applied: SHIPPED.length, pending: [], latest: SHIPPED.at(-1) },
    });
    expect(health.database.latencyMs).toBeGreaterThan(0);
    expect(health.database.pool.max).toBe(4);
    // The application's pool: the probe has a connection of its own, so this may still be 0.
    expect(health.database.pool.total).toBeGreaterThanOrEqual(0);
    expect(health.database.pool.total).toBeLessThanOrEqual(4);
    expect(health.database.pool.waiting).toBe(0);
    const pool = (await t.server.orm.em.getConnection().getNativeClient()) as { totalCount: number };
    expect(health.database.pool.total).toBe(pool.totalCount);
  });

  it('answers /health/ready, /health and /health/live with health+json', async () => {
    for (const path of ['/health/ready', '/health']) {
      const res = await t.server.get(path);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/health\+json/);
      expect(res.body.status).toBe('pass');
      expect(res.body.checks['database:responseTime'][0].status).toBe('pass');
    }
    const live = await t.server.get('/health/live');
    expect(live.status).toBe(200);
  });

  it('reports DOWN quickly when the database refuses connections, and recovers when it returns', async () => {
    await t.proxy.setMode('refuse');
    // Refused at once: the reason says it did not wait for anything.
    const { body } = await t.server.gql<HealthAnswer>(HEALTH);
    expect(body.data!.health.status).toBe('DOWN');
    expect(body.data!.health.database.connected).toBe(false);
    expect(body.data!.health.database.error).toMatch(/ECONNREFUSED|terminated|connect/i);
    expect(body.data!.health.database.error).not.toContain(new URL(t.db.url).password);
    expect(body.data!.health.migrations.upToDate).toBe(false);

    const ready = await t.server.get('/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.body.status).toBe('fail');
    expect((await t.server.get('/health/live')).status).toBe(200);

    await t.proxy.setMode('forward');
    const again = await t.server.gql<HealthAnswer>(HEALTH);
    expect(again.body.data!.health.status).toBe('OK');
  });

  it('answers within 2 s when the database accepts connections but never replies', async () => {
    await t.proxy.setMode('hang');
    try {
      // The server gave up on its own budget, within the contract's 2 s, rather than on the client's patience.
      const { body } = await t.server.gql<HealthAnswer>(HEALTH);
      expect(body.data!.health.status).toBe('DOWN');
      const budgetMs = Number(/no answer within (\d+) ms/.exec(body.data!.health.database.error ?? '')?.[1]);
      expect(budgetMs).toBeLessThan(2000);

      const ready = await t.server.get('/health/ready');
      expect(ready.status).toBe(503);
      expect(JSON.stringify(ready.body)).toContain(`no answer within ${budgetMs} ms`);
      // Live never touches the database: it answers while every query hangs.
      const live = await t.server.get('/health/live');
      expect(live.status).toBe(200);
    } finally {
      await t.proxy.setMode('forward');
    }
  });
});

describe('health with a migration pending', () => {
  const t = serverForTests({ env: { MIGRATE_ON_START: 'false' } });

  it('reports DEGRADED, names the pending migration and does not create the migrations table', async () => {
    const { body } = await t.server.gql<HealthAnswer>(HEALTH);
    const health = body.data!.health;
    expect(health.status).toBe('DEGRADED');
    expect(health.database.connected).toBe(true);
    expect(SHIPPED[0]).toMatch(/^Migration\d+_initial$/);
    expect(health.migrations).toEqual({ upToDate: false, applied: 0, pending: SHIPPED, latest: null });
    const { rows } = await t.db.query(`select to_regclass('mikro_orm_migrations') as t`);
    expect(rows[0]!.t).toBeNull();

    const ready = await t.server.get('/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.body.status).toBe('warn');
    expect(ready.body.checks['migrations:pending'][0].observedValue).toEqual(health.migrations.pending);
  });
});

describe('health while every pooled connection is stuck on a lock', () => {
  // A small pool, and waits long enough that nothing gives up while the test looks.
  const t = serverForTests({ env: { DB_POOL_MAX: '2', DB_POOL_ACQUIRE_TIMEOUT_MS: '30000', DB_STATEMENT_TIMEOUT_MS: '60000' } });

  /** Backends of the server under test waiting for a lock they have not been granted. */
  const blockedBackends = async () => {
    const { rows } = await t.db.query<{ n: number }>(
      `select count(distinct l.pid)::int as n from pg_locks l join pg_stat_activity a on a.pid = l.pid where not l.granted and a.datname = $1`,
      [t.db.name],
    );
    return rows[0]!.n;
  };

  it('stays OK and ready, and shows the requests waiting for a connection', async () => {
    const user = await signUpUser(t.server.url);
    const locker = new pg.Client({ connectionString: t.db.directUrl });
    await locker.connect();
    let stuck: Promise<ApiResult<{ tasks: { edges: unknown[] } }>>[];
    try {
      await locker.query('begin');
      await locker.query('lock table tasks in access exclusive mode');
      // Twice as many requests as the pool holds: two take the connections and wait on the lock, the rest wait
      // for a connection.
      stuck = Array.from({ length: 4 }, () => user.api.request<{ tasks: { edges: unknown[] } }>(LIST_TASKS, { first: 5 }));

      // Not vacuous: every pooled connection is taken and blocked, and requests queue for one.
      const deadline = performance.now() + 10_000;
      let stats = t.server.health.poolStats();
      let blocked = 0;
      while (performance.now() < deadline) {
        stats = t.server.health.poolStats();
        blocked = await blockedBackends();
        if (blocked >= 2 && stats.waiting > 0) break;
        await sleep(25);
      }
      expect(blocked).toBe(2);
      expect(stats).toMatchObject({ max: 2, total: 2, idle: 0 });
      expect(stats.waiting).toBeGreaterThan(0);

      // Answered while every pooled connection is blocked and requests queue: the probe has a connection of its own.
      const { body } = await t.server.gql<HealthAnswer>(HEALTH);
      const health = body.data!.health;
      expect(health.status).toBe('OK');
      expect(health.database).toMatchObject({ connected: true, error: null });
      expect(health.database.pool).toMatchObject({ max: 2, total: 2, idle: 0 });
      expect(health.database.pool.waiting).toBeGreaterThan(0);

      const ready = await t.server.get('/health/ready');
      expect(ready.status).toBe(200);
      expect(ready.body.status).toBe('pass');
      expect(ready.body.checks['database:connections'][0].observedValue.waiting).toBeGreaterThan(0);

      const metrics = await t.server.get('/metrics');
      expect(metrics.status).toBe(200);
      const waiting = /^db_pool_waiting (\S+)$/m.exec(metrics.body as string);
      expect(Number(waiting?.[1])).toBeGreaterThan(0);

      // Still stuck: the checks above did not free a connection.
      expect(await blockedBackends()).toBe(2);
    } finally {
      await locker.query('rollback').catch(() => undefined);
      await locker.end();
    }

    const results = await Promise.all(stuck);
    expect(results).toHaveLength(4);
    for (const result of results) {
      expect(result.errors).toBeUndefined();
      expect(result.data!.tasks.edges).toEqual([]);
    }
    expect(t.server.health.poolStats().waiting).toBe(0);
  });
});
