import { serverAudits } from 'graphql-http';
import { serverForTests } from '../support/server.js';

describe('GraphQL over HTTP (graphql-http audits)', () => {
  const t = serverForTests();

  it('passes every MUST of the spec', async () => {
    const results = await Promise.all(serverAudits({ url: `${t.server.url}/graphql`, fetchFn: fetch }).map((audit) => audit.fn()));
    const count = (status: string) => results.filter((r) => r.status === status).length;
    const summary = { ok: count('ok'), warn: count('warn'), notice: count('notice'), error: count('error') };
    const failures = results.filter((r) => r.status === 'error').map((r) => `${r.id} ${r.name}: ${'reason' in r ? r.reason : ''}`);
    expect(failures).toEqual([]);
    expect(summary.ok).toBeGreaterThan(40);
    process.stdout.write(`graphql-http audits: ${JSON.stringify(summary)}\n`);
  });
});
