import { serverAudits } from 'graphql-http';
import { createTestDatabase, type TestDatabase } from './support/database.js';
import { startTestServer, type TestServer } from './support/server.js';

describe('GraphQL over HTTP (graphql-http audits)', () => {
  let db: TestDatabase;
  let server: TestServer;

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await startTestServer({ databaseUrl: db.url });
  });
  afterAll(async () => {
    await server.stop();
    await db.drop();
  });

  it('passes every MUST of the spec', async () => {
    const results = await Promise.all(serverAudits({ url: `${server.url}/graphql`, fetchFn: fetch }).map((audit) => audit.fn()));
    const count = (status: string) => results.filter((r) => r.status === status).length;
    const summary = { ok: count('ok'), warn: count('warn'), notice: count('notice'), error: count('error') };
    const failures = results.filter((r) => r.status === 'error').map((r) => `${r.id} ${r.name}: ${'reason' in r ? r.reason : ''}`);
    expect(failures).toEqual([]);
    expect(summary.ok).toBeGreaterThan(40);
    process.stdout.write(`graphql-http audits: ${JSON.stringify(summary)}\n`);
  });
});
