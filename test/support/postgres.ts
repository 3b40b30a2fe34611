// The one way tests get a PostgreSQL: global-setup.js starts the run's server with it, and a test that needs one of
// its own (to stop, freeze, reach over TLS or behind PgBouncer) starts another. global-setup.js imports this file
// in jest's parent process, through the swc loader it registers.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import pg from 'pg';
import { PROJECT_ROOT } from '../../src/config/app-version.js';
import { freePort, serverUser, startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/embedded/embedded.js';
import { createLogger } from '../../src/observability/logger.js';

/** Fast and unsafe: a test's data need not survive a crash of the machine. */
const SETTINGS = { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' };

/** The loopback addresses a TLS server listens on: its first certificate names the first one only. */
export const CERTIFIED_IP = '127.0.0.1';
export const UNCERTIFIED_IP = '127.0.0.2';
/** The SANs of a TLS server's first certificate. */
export const FIRST_SANS = `DNS:localhost,IP:${CERTIFIED_IP}`;

export interface TestPostgresOptions {
  /**
   * Accept TLS connections only (`pg_hba.conf` has `hostssl` lines and nothing else), with a certificate from a CA
   * made for the server (SANs `FIRST_SANS`), listening on `UNCERTIFIED_IP` too, an address the certificate does not name.
   */
  tls?: boolean;
  /** A PgBouncer in transaction mode in front of the server: `pooledUrl`. */
  pgbouncer?: boolean;
  /** The database `url` names, created if missing; `postgres` by default. */
  database?: string;
  /** Server settings (`postgres -c`) beside the fast and unsafe ones every test server has (`fsync=off`...). */
  settings?: Record<string, string>;
  /** Where the data goes; `.data/tls-<random>` or `.data/faults-<random>` in the project by default. */
  dataDir?: string;
  /** The data goes as soon as the server stops, rather than at `destroy()`: for a server that never restarts. */
  ephemeral?: boolean;
}

/**
 * A real PostgreSQL (the embedded one) for tests, with fast and unsafe settings: the run's own (global-setup.js), or a
 * test's own to stop, restart, freeze and cut off without disturbing the others, the faults an operator meets on Neon
 * (restarts, killed connections, a compute that stops answering); with `tls`, one that accepts TLS only; with
 * `pgbouncer`, behind a real PgBouncer in transaction mode.
 */
export class TestPostgres {
  private constructor(
    private readonly options: TestPostgresOptions,
    private readonly dataDir: string,
    private readonly settings: Record<string, string>,
    private server: EmbeddedDatabase,
    private readonly certificates: Certificates | undefined,
    private bouncer: PgBouncer | undefined,
  ) {}

  private frozen = false;

  static async start(options: TestPostgresOptions = {}): Promise<TestPostgres> {
    const dataDir = options.dataDir ?? join(PROJECT_ROOT, '.data', `${options.tls ? 'tls' : 'faults'}-${randomBytes(4).toString('hex')}`);
    const certificates = options.tls ? Certificates.make() : undefined;
    let server: EmbeddedDatabase;
    const settings = { ...SETTINGS, ...(certificates ? tlsSettings(certificates) : {}), ...options.settings };
    try {
      server = await startEmbeddedPostgres({ dataDir, logger: logger(), ephemeral: options.ephemeral, settings });
    } catch (error) {
      certificates?.remove(); // the data stays: the error names its server.log
      throw error;
    }
    const postgres = new TestPostgres(options, dataDir, settings, server, certificates, undefined);
    try {
      const { database } = postgres;
      if (database !== 'postgres') {
        await postgres.admin(async (client) => {
          const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [database]);
          if (rowCount === 0) await client.query(`create database ${client.escapeIdentifier(database)}`);
        });
      }
      if (options.pgbouncer) postgres.bouncer = await startPgBouncer(postgres.url, certificates && { caFile: certificates.caFile });
      return postgres;
    } catch (error) {
      postgres.destroy();
      throw error;
    }
  }

  private get database(): string {
    return this.options.database ?? 'postgres';
  }

  /** A URL for `database` as the superuser: the server's, straight (no PgBouncer). */
  get url(): string {
    return this.urlFor(this.database);
  }

  /** A URL for `database` as the superuser, through `host` (127.0.0.1 by default), with `params` as its query string. */
  urlFor(database: string, { host, params = {} }: { host?: string; params?: Record<string, string> } = {}): string {
    const url = new URL(this.server.urlFor(database));
    if (host) url.hostname = host;
    for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
    return url.toString();
  }

  /** `url` through the PgBouncer in front of the server (`pgbouncer: true`). */
  get pooledUrl(): string {
    if (!this.bouncer) throw new Error('this PostgreSQL has no PgBouncer: start it with { pgbouncer: true }');
    return this.bouncer.urlFor(this.url);
  }

  /** The PEM file of the CA that signs the server's certificates (`tls: true`). */
  get caFile(): string {
    return this.tls().caFile;
  }

  /** Stops the server (not its PgBouncer); `restart()` starts it again on the same port with the same data. */
  stop(): void {
    this.server.stop();
  }

  async restart(): Promise<void> {
    if (this.options.ephemeral) throw new Error('an ephemeral PostgreSQL cannot restart: its data went when it stopped');
    this.server = await startEmbeddedPostgres({ dataDir: this.dataDir, logger: logger(), settings: this.settings, port: this.server.port });
  }

  /** SIGSTOP the postmaster and every backend: connections are still accepted by the kernel, nothing answers. */
  freeze(): void {
    this.frozen = true;
    this.signalAll('STOP');
  }

  thaw(): void {
    this.signalAll('CONT');
    this.frozen = false;
  }

  /** pg_terminate_backend on every connection to the database of `url`: SQLSTATE 57P01 for their clients. */
  terminateBackends(): Promise<number> {
    return this.admin(async (client) => {
      const { rows } = await client.query<{ n: number }>(
        `select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()`,
        [this.database],
      );
      return rows[0]!.n;
    });
  }

  /**
   * Gives a TLS server a new certificate with `sans` (same CA, same key) and waits until new connections get it:
   * PostgreSQL reloads its TLS files on SIGHUP (`pg_reload_conf()`), which is asynchronous.
   */
  async reissue(sans: string): Promise<void> {
    const serial = this.tls().issue(sans);
    await this.admin((client) => client.query('select pg_reload_conf()'));
    for (let attempt = 0; ; attempt++) {
      const presented = await this.admin(async (client) => {
        const socket = (client as unknown as { connection: { stream: TLSSocket } }).connection.stream;
        return parseInt(socket.getPeerCertificate().serialNumber, 16);
      });
      if (presented === serial) return;
      if (attempt >= 100) throw new Error(`the server still presents certificate ${presented}, not ${serial}`);
      await sleep(50);
    }
  }

  /** Stops PgBouncer and the server, whatever state they are in, and removes their files. */
  destroy(): void {
    if (this.frozen) {
      try {
        this.thaw();
      } catch {
        // not running
      }
    }
    try {
      this.bouncer?.stop();
      this.server.stop();
    } finally {
      rmSync(this.dataDir, { recursive: true, force: true });
      this.certificates?.remove();
    }
  }

  private tls(): Certificates {
    if (!this.certificates) throw new Error('this PostgreSQL has no TLS: start it with { tls: true }');
    return this.certificates;
  }

  /** A connection of the superuser to `postgres`, for setup; over TLS trusting the CA, whatever the certificate names. */
  private async admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
    const ssl = this.certificates && { ca: readFileSync(this.certificates.caFile, 'utf8'), checkServerIdentity: () => undefined };
    const client = new pg.Client({ connectionString: this.server.urlFor('postgres'), ssl });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  }

  private signalAll(signal: 'STOP' | 'CONT'): void {
    const postmaster = readFileSync(join(this.dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]!;
    const children = execFileSync('pgrep', ['-P', postmaster], { encoding: 'utf8' }).split('\n').filter(Boolean);
    execFileSync('kill', [`-${signal}`, postmaster, ...children]);
  }
}

const logger = () => createLogger({ env: 'test', logLevel: 'warn' });

/** A folder outside the project: as root the server and PgBouncer run as `postgres`, who may not enter the project's folder. */
function openTmpDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

function tlsSettings(certificates: Certificates): Record<string, string> {
  const hbaFile = join(certificates.dir, 'pg_hba.conf');
  writeFileSync(hbaFile, `hostssl all all ${CERTIFIED_IP}/32 scram-sha-256\nhostssl all all ${UNCERTIFIED_IP}/32 scram-sha-256\n`);
  return {
    listen_addresses: `${CERTIFIED_IP},${UNCERTIFIED_IP}`,
    ssl: 'on',
    ssl_cert_file: certificates.chainFile,
    ssl_key_file: certificates.keyFile,
    hba_file: hbaFile,
  };
}

const OPENSSL_CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $ENV::SERVER_SANS
`;

/** A private CA and the server's key (EC P-256: milliseconds each), then server certificates that CA signs. */
class Certificates {
  readonly caFile: string;
  readonly keyFile: string;
  /** What the server presents: its certificate, then the CA's, as servers often do (a client must not trust it). */
  readonly chainFile: string;
  private serial = 1;

  /** In a folder of their own, with a first certificate for `FIRST_SANS`. */
  static make(): Certificates {
    const dir = openTmpDir('todo-tls-');
    try {
      const certificates = new Certificates(dir);
      certificates.issue(FIRST_SANS);
      // PostgreSQL refuses a key that anyone but its own user can read; as root it runs as `postgres`.
      chmodSync(certificates.keyFile, 0o600);
      const user = serverUser();
      if (user.uid !== undefined) chownSync(certificates.keyFile, user.uid, user.gid!);
      return certificates;
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  private constructor(readonly dir: string) {
    this.caFile = join(dir, 'ca.crt');
    this.keyFile = join(dir, 'server.key');
    this.chainFile = join(dir, 'chain.crt');
    const newKey = ['-config', 'openssl.cnf', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    writeFileSync(join(dir, 'openssl.cnf'), OPENSSL_CONFIG);
    this.openssl(
      '',
      'req',
      '-x509',
      '-extensions',
      'ca',
      ...newKey,
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      '/CN=todo test CA',
    );
    this.openssl('', 'req', '-new', ...newKey, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=todo test server');
  }

  /** Signs a certificate for the server's key with `sans` (`DNS:localhost,IP:127.0.0.1`); returns its serial. */
  issue(sans: string): number {
    const serial = ++this.serial;
    this.openssl(
      sans,
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-set_serial',
      String(serial),
      '-days',
      '2',
      '-extfile',
      'openssl.cnf',
      '-extensions',
      'server',
      '-out',
      'server.crt',
    );
    writeFileSync(this.chainFile, readFileSync(join(this.dir, 'server.crt'), 'utf8') + readFileSync(this.caFile, 'utf8'));
    return serial;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private openssl(sans: string, ...args: string[]): void {
    const env = { ...process.env, SERVER_SANS: sans || 'DNS:unused' };
    execFileSync('openssl', args, { cwd: this.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  }
}

/** A real PgBouncer in transaction mode: the set-up Neon's pooled URL gives. */
export interface PgBouncer {
  /** Where it listens, on 127.0.0.1. */
  port: number;
  /** `url` (of the server it fronts) through PgBouncer. */
  urlFor(url: string): string;
  /** Stops it (SIGINT: at once) and removes its files. */
  stop(): void;
}

/** Whether `pgbouncer` is on the PATH. */
export function hasPgBouncer(): boolean {
  return spawnSync('pgbouncer', ['--version']).status === 0;
}

/**
 * A real PgBouncer in transaction mode in front of the server of `target` (any of its databases, as the user of
 * `target`), on a free port of 127.0.0.1, with its files in a temporary folder. With `caFile`, it reaches the server
 * over TLS trusting that CA.
 */
export async function startPgBouncer(target: string, tls?: { caFile: string }): Promise<PgBouncer> {
  if (!hasPgBouncer()) throw new Error('PgBouncer is not on the PATH (apt-get install pgbouncer)');
  const port = await freePort();
  const tmp = openTmpDir('todo-pgbouncer-');
  const dir = join(tmp, 'pgbouncer');
  const user = serverUser();
  try {
    mkdirSync(dir, { recursive: true });
    const url = new URL(target);
    const username = decodeURIComponent(url.username);
    writeFileSync(join(dir, 'userlist.txt'), `"${username}" "${decodeURIComponent(url.password)}"\n`, { mode: 0o600 });
    writeFileSync(
      join(dir, 'pgbouncer.ini'),
      [
        '[databases]',
        `* = host=${url.hostname} port=${url.port}`,
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${port}`,
        'unix_socket_dir =',
        'auth_type = scram-sha-256',
        `auth_file = ${join(dir, 'userlist.txt')}`,
        'pool_mode = transaction',
        'max_client_conn = 2000',
        'default_pool_size = 40',
        'ignore_startup_parameters = extra_float_digits',
        `admin_users = ${username}`,
        `logfile = ${join(dir, 'pgbouncer.log')}`,
        `pidfile = ${join(dir, 'pgbouncer.pid')}`,
        ...(tls ? ['server_tls_sslmode = verify-ca', `server_tls_ca_file = ${tls.caFile}`] : []),
        '',
      ].join('\n'),
    );
    if (user.uid !== undefined) {
      for (const file of ['', 'userlist.txt', 'pgbouncer.ini']) chownSync(join(dir, file), user.uid, user.gid!);
    }
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    throw error;
  }
  const child = spawn('pgbouncer', [join(dir, 'pgbouncer.ini')], { ...user, stdio: 'ignore', detached: false });
  const stop = () => {
    child.kill('SIGINT');
    rmSync(tmp, { recursive: true, force: true });
  };
  for (let i = 0; i < 100; i++) {
    if (await canConnect(port)) {
      return {
        port,
        urlFor: (url) => {
          const pooled = new URL(url);
          pooled.port = String(port);
          return pooled.toString();
        },
        stop,
      };
    }
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  let log = '';
  try {
    log = readFileSync(join(dir, 'pgbouncer.log'), 'utf8');
  } catch {
    // it wrote none
  }
  stop();
  throw new Error(`pgbouncer did not start; its log (removed with its folder):\n${log}`);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
