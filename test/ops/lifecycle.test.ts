import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config/app-version.js';
import { freePort } from '../../src/embedded/embedded.js';
import { spawnServer } from '../support/process.js';

const CLUSTER = join(PROJECT_ROOT, '.data', 'pg');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function health(port: number): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${port}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: '{ health { status database { connected } migrations { upToDate } } }' }),
  });
  return res.json();
}

/** `npm start` on a machine with no DATABASE_URL: the embedded PostgreSQL under .data/, as a newcomer gets it. */
describe('the server process with the embedded database', () => {
  it('starts the embedded PostgreSQL, migrates, serves OK, and stops everything on SIGTERM with exit 0', async () => {
    const port = await freePort();
    const server = spawnServer({ PORT: String(port) });
    await server.waitFor(/"msg":"server ready"/);
    expect(await health(port)).toEqual({
      data: { health: { status: 'OK', database: { connected: true }, migrations: { upToDate: true } } },
    });
    const startedHere = /"msg":"embedded PostgreSQL started"/.test(server.output());

    server.child.kill('SIGTERM');
    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(server.output()).toMatch(/"msg":"stopped"/);
    if (startedHere) {
      expect(server.output()).toMatch(/"msg":"embedded PostgreSQL stopped"/);
      expect(existsSync(join(CLUSTER, 'postmaster.pid'))).toBe(false);
    }
  });

  it('reuses the data on a second start and stops on SIGINT with exit 0', async () => {
    const port = await freePort();
    const server = spawnServer({ PORT: String(port) });
    await server.waitFor(/"msg":"server ready"/);
    expect(server.output()).not.toMatch(/initialising embedded PostgreSQL/);
    expect(server.output()).toMatch(/"msg":"migrations up to date"/);
    expect((await health(port)).data.health.status).toBe('OK');

    server.child.kill('SIGINT');
    expect(await server.exited).toEqual({ code: 0, signal: null });
  });
});
