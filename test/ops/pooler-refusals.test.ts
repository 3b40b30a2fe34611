import { signUpUser } from '../support/api.js';
import { hasPgBouncer, TestPostgres } from '../support/postgres.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createTask, LIST_TASKS } from '../support/tasks.js';
import { waitFor } from '../support/wait.js';

// CI installs PgBouncer (.ci/run); a machine without it skips this file, saying so in the test's name.
const pgbouncer = hasPgBouncer();

(pgbouncer ? describe : describe.skip)(
  `a server behind a real PgBouncer while PostgreSQL restarts${pgbouncer ? '' : ' (skipped: no pgbouncer on the PATH)'}`,
  () => {
    let postgres: TestPostgres;
    let server: TestServer;
    beforeAll(async () => {
      postgres = await TestPostgres.start({ database: 'app', pgbouncer: true });
      server = await startTestServer({
        databaseUrl: postgres.pooledUrl,
        directUrl: postgres.url,
        env: { DB_POOL_MAX: '3', DB_POOL_ACQUIRE_TIMEOUT_MS: '2000', DB_CONNECT_TIMEOUT_MS: '2000' },
      });
    }, 60_000);
    afterAll(async () => {
      await server?.stop();
      postgres?.destroy();
    });

    it('answers DATABASE_UNAVAILABLE, never INTERNAL_SERVER_ERROR, through PgBouncer’s server_login_retry window, then serves again', async () => {
      const user = await signUpUser(server.url);
      await createTask(user.api, { title: 'before the restart' });
      const codes: unknown[] = [];
      const ask = async () => {
        const { errors } = await user.api.request(LIST_TASKS, { first: 1 });
        codes.push(...(errors ?? []).map((error) => error.extensions?.code));
      };
      postgres.stop();
      // PgBouncer's logins fail now; from then on it refuses logins for server_login_retry (15 s by default).
      for (let i = 0; i < 3; i++) await ask();
      await postgres.restart();
      for (let i = 0; i < 5; i++) await ask();
      expect(codes.length).toBeGreaterThan(0);
      expect([...new Set(codes)]).toEqual(['DATABASE_UNAVAILABLE']);
      // The window ends by itself: the same request is served again.
      await waitFor(async () => !(await user.api.request(LIST_TASKS, { first: 1 })).errors, 40_000, 500);
    }, 90_000);
  },
);
