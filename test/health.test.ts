import { performance } from 'node:perf_hooks';
import { serverForTests } from './support/server.js';

const HEALTH = `{ health { status version uptimeSeconds checkedAt
  database { connected latencyMs serverVersion error pool { max total idle waiting } }
  migrations { upToDate applied pending latest } } }`;

interface HealthAnswer {
  health: {
    status: string;
    database: { connected: boolean; latencyMs: number | null; serverVersion: string | null; error: string | null; pool: Record<string, number> };
    migrations: { upToDate: boolean; applied: number; pending: string[]; latest: string | null };
  };
}

async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const result = await work();
  return [result, performance.now() - started];
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
      migrations: { upToDate: true, applied: 1, pending: [], latest: expect.stringMatching(/^Migration\d+/) },
    });
    expect(health.database.latencyMs).toBeGreaterThan(0);
    expect(health.database.pool.max).toBe(4);
    expect(health.database.pool.total).toBeGreaterThanOrEqual(1);
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
    const [{ body }, elapsed] = await timed(() => t.server.gql<HealthAnswer>(HEALTH));
    expect(elapsed).toBeLessThan(2000);
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
      const [{ body }, elapsed] = await timed(() => t.server.gql<HealthAnswer>(HEALTH));
      expect(elapsed).toBeLessThan(2000);
      expect(body.data!.health.status).toBe('DOWN');
      expect(body.data!.health.database.error).toMatch(/no answer within/);

      const [ready, readyElapsed] = await timed(() => t.server.get('/health/ready'));
      expect(readyElapsed).toBeLessThan(2000);
      expect(ready.status).toBe(503);
      const [live, liveElapsed] = await timed(() => t.server.get('/health/live'));
      expect(live.status).toBe(200);
      expect(liveElapsed).toBeLessThan(500);
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
    expect(health.migrations).toEqual({ upToDate: false, applied: 0, pending: [expect.stringMatching(/^Migration\d+/)], latest: null });
    const { rows } = await t.db.query(`select to_regclass('mikro_orm_migrations') as t`);
    expect(rows[0]!.t).toBeNull();

    const ready = await t.server.get('/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.body.status).toBe('warn');
    expect(ready.body.checks['migrations:pending'][0].observedValue).toEqual(health.migrations.pending);
  });
});
