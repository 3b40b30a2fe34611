import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { PROJECT_ROOT } from '../../src/config/app-version.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/embedded/embedded.js';
import { createLogger } from '../../src/observability/logger.js';

/**
 * A PostgreSQL server of a test's own, to stop, restart, freeze and cut off without disturbing the others:
 * the faults an operator meets on Neon (restarts, killed connections, a compute that stops answering).
 */
export class OwnPostgres {
  private constructor(
    private readonly dataDir: string,
    private server: EmbeddedDatabase,
  ) {}

  static async start(): Promise<OwnPostgres> {
    const dataDir = join(PROJECT_ROOT, '.data', `faults-${randomBytes(4).toString('hex')}`);
    const server = await startEmbeddedPostgres({ dataDir, logger: createLogger({ env: 'test', logLevel: 'warn' }), settings: SETTINGS });
    await server.ensureDatabase('app');
    return new OwnPostgres(dataDir, server);
  }

  get url(): string {
    return this.server.urlFor('app');
  }

  stop(): void {
    this.server.stop();
  }

  async restart(): Promise<void> {
    this.server = await startEmbeddedPostgres({
      dataDir: this.dataDir,
      logger: createLogger({ env: 'test', logLevel: 'warn' }),
      settings: SETTINGS,
      port: this.server.port,
    });
  }

  /** SIGSTOP the postmaster and every backend: connections are still accepted by the kernel, nothing answers. */
  freeze(): void {
    this.signalAll('STOP');
  }

  thaw(): void {
    this.signalAll('CONT');
  }

  /** pg_terminate_backend on every connection to the app database: SQLSTATE 57P01 for their clients. */
  async terminateBackends(): Promise<number> {
    const client = new pg.Client({ connectionString: this.server.urlFor('postgres') });
    await client.connect();
    try {
      const { rows } = await client.query<{ n: number }>(
        `select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where datname = 'app' and pid <> pg_backend_pid()`,
      );
      return rows[0]!.n;
    } finally {
      await client.end();
    }
  }

  destroy(): void {
    try {
      this.thaw();
    } catch {
      // not running
    }
    this.server.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  private signalAll(signal: 'STOP' | 'CONT'): void {
    const postmaster = readFileSync(join(this.dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]!;
    const children = execFileSync('pgrep', ['-P', postmaster], { encoding: 'utf8' }).split('\n').filter(Boolean);
    execFileSync('kill', [`-${signal}`, postmaster, ...children]);
  }
}

const SETTINGS = { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' };
