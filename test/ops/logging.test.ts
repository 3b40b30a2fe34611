import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startTestServer, type TestServer } from '../support/server.js';

describe('logs', () => {
  let db: TestDatabase;
  const servers: TestServer[] = [];
  const start = async (env: Record<string, string>) => {
    const server = await startTestServer({ databaseUrl: db.url, env });
    servers.push(server);
    return server;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    for (const server of servers) await server.stop();
    await db.drop();
  });

  it('write one line per request with its id, duration and outcome', async () => {
    const server = await start({ LOG_LEVEL: 'info' });
    await server.gql('query Probe { health { status } }');
    await server.gql('{ nope }');
    await server.get('/health/live');
    const requests = server.logs.filter((line) => line.msg === 'request');
    expect(requests).toHaveLength(3);
    expect(requests[0]).toMatchObject({ method: 'POST', path: '/graphql', status: 200, operation: 'Probe', requestId: expect.any(String) });
    expect(requests[0]!.durationMs).toEqual(expect.any(Number));
    expect(requests[1]).toMatchObject({ status: 400, errors: ['GRAPHQL_VALIDATION_FAILED'] });
    expect(requests[2]).toMatchObject({ method: 'GET', path: '/health/live', status: 200 });
  });

  it('keep the SQL out at info and put it in at debug', async () => {
    const info = await start({ LOG_LEVEL: 'info' });
    await info.gql('{ health { status } }');
    expect(JSON.stringify(info.logs)).not.toMatch(/select|insert|mikro_orm_migrations/i);

    const debug = await start({ LOG_LEVEL: 'debug' });
    await debug.orm.em.fork().getConnection().execute('select 42 as answer');
    expect(debug.logs.some((line) => line.component === 'mikro-orm' && /select 42/.test(line.msg))).toBe(true);
  });

  it('never contain the database password, even at trace', async () => {
    const trace = await start({ LOG_LEVEL: 'trace' });
    await trace.gql('{ health { status } }');
    const password = decodeURIComponent(new URL(db.url).password);
    expect(password.length).toBeGreaterThan(8);
    expect(JSON.stringify(trace.logs)).not.toContain(password);
  });
});
