import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, serverUser } from '../../src/embedded/embedded.js';
import { signUpUser } from '../support/api.js';
import { OwnPostgres } from '../support/own-postgres.js';
import { startPgBouncer } from '../support/pgbouncer.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { createTask, LIST_TASKS } from '../support/tasks.js';
import { waitFor } from '../support/wait.js';

// CI installs PgBouncer (.ci/run); a machine without it skips this file, saying so in the test's name.
const pgbouncer = spawnSync('pgbouncer', ['--version']).status === 0;

(pgbouncer ? describe : describe.skip)(
  `a server behind a real PgBouncer while PostgreSQL restarts${pgbouncer ? '' : ' (skipped: no pgbouncer on the PATH)'}`,
  () => {
    let postgres: OwnPostgres;
    let bouncer: { stop(): void };
    let dir: string;
    let server: TestServer;
    beforeAll(async () => {
      postgres = await OwnPostgres.start();
      const port = await freePort();
      // Outside the project: as root PgBouncer runs as `postgres`, who may not enter the project's folder.
      dir = mkdtempSync(join(tmpdir(), 'todo-pgbouncer-'));
      chmodSync(dir, 0o755);
      bouncer = await startPgBouncer({ dir: join(dir, 'pgbouncer'), target: postgres.url, port, user: serverUser() });
      const pooled = new URL(postgres.url);
      pooled.port = String(port);
      server = await startTestServer({
        databaseUrl: pooled.toString(),
        directUrl: postgres.url,
        env: { DB_POOL_MAX: '3', DB_POOL_ACQUIRE_TIMEOUT_MS: '2000', DB_CONNECT_TIMEOUT_MS: '2000' },
      });
    }, 60_000);
    afterAll(async () => {
      await server?.stop();
      bouncer?.stop();
      postgres?.destroy();
      if (dir) rmSync(dir, { recursive: true, force: true });
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
