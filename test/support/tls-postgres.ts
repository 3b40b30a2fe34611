import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import pg from 'pg';
import { PROJECT_ROOT } from '../../src/config/app-version.js';
import { startEmbeddedPostgres, serverUser, type EmbeddedDatabase } from '../../src/embedded/embedded.js';
import { createLogger } from '../../src/observability/logger.js';

/** The loopback addresses the server listens on: its first certificate names the first one only. */
export const CERTIFIED_IP = '127.0.0.1';
export const UNCERTIFIED_IP = '127.0.0.2';
/** The SANs of the server's first certificate. */
export const FIRST_SANS = `DNS:localhost,IP:${CERTIFIED_IP}`;

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

  constructor(private readonly dir: string) {
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

  private openssl(sans: string, ...args: string[]): void {
    const env = { ...process.env, SERVER_SANS: sans || 'DNS:unused' };
    execFileSync('openssl', args, { cwd: this.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  }
}

/**
 * A PostgreSQL of a test's own that accepts TLS connections only (`pg_hba.conf` has `hostssl` lines and
 * nothing else), with a certificate from a CA made for it (SANs `DNS:localhost` and `IP:127.0.0.1` at first).
 * It also listens on 127.0.0.2, an address its certificate does not name.
 */
export class TlsPostgres {
  private constructor(
    private readonly dataDir: string,
    private readonly tlsDir: string,
    private readonly server: EmbeddedDatabase,
    private readonly certificates: Certificates,
  ) {}

  static async start(): Promise<TlsPostgres> {
    const dataDir = join(PROJECT_ROOT, '.data', `tls-${randomBytes(4).toString('hex')}`);
    // Outside the project: as root the server runs as `postgres`, who may not enter the project's folder.
    const tlsDir = mkdtempSync(join(tmpdir(), 'todo-tls-'));
    chmodSync(tlsDir, 0o755);
    try {
      const certificates = new Certificates(tlsDir);
      certificates.issue(FIRST_SANS);
      const hbaFile = join(tlsDir, 'pg_hba.conf');
      writeFileSync(hbaFile, `hostssl all all ${CERTIFIED_IP}/32 scram-sha-256\nhostssl all all ${UNCERTIFIED_IP}/32 scram-sha-256\n`);
      // PostgreSQL refuses a key that anyone but its own user can read; as root it runs as `postgres`.
      chmodSync(certificates.keyFile, 0o600);
      const user = serverUser();
      if (user.uid !== undefined) chownSync(certificates.keyFile, user.uid, user.gid!);
      const server = await startEmbeddedPostgres({
        dataDir,
        logger: createLogger({ env: 'test', logLevel: 'warn' }),
        settings: {
          listen_addresses: `${CERTIFIED_IP},${UNCERTIFIED_IP}`,
          ssl: 'on',
          ssl_cert_file: certificates.chainFile,
          ssl_key_file: certificates.keyFile,
          hba_file: hbaFile,
          fsync: 'off',
          synchronous_commit: 'off',
          full_page_writes: 'off',
        },
      });
      return new TlsPostgres(dataDir, tlsDir, server, certificates);
    } catch (error) {
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(tlsDir, { recursive: true, force: true });
      throw error;
    }
  }

  /** The PEM file of the CA that signs the server's certificates. */
  get caFile(): string {
    return this.certificates.caFile;
  }

  /** A URL for the `postgres` database as its superuser, through `host`, with `params` as its query string. */
  url(host: string, params: Record<string, string> = {}): string {
    const url = new URL(this.server.urlFor('postgres'));
    url.hostname = host;
    for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
    return url.toString();
  }

  /**
   * Gives the server a new certificate with `sans` (same CA, same key) and waits until new connections get it:
   * PostgreSQL reloads its TLS files on SIGHUP (`pg_reload_conf()`), which is asynchronous.
   */
  async reissue(sans: string): Promise<void> {
    const serial = this.certificates.issue(sans);
    await this.withTlsClient((client) => client.query('select pg_reload_conf()'));
    for (let attempt = 0; ; attempt++) {
      const presented = await this.withTlsClient(async (client) => {
        const socket = (client as unknown as { connection: { stream: TLSSocket } }).connection.stream;
        return parseInt(socket.getPeerCertificate().serialNumber, 16);
      });
      if (presented === serial) return;
      if (attempt >= 100) throw new Error(`the server still presents certificate ${presented}, not ${serial}`);
      await sleep(50);
    }
  }

  destroy(): void {
    try {
      this.server.stop();
    } finally {
      rmSync(this.dataDir, { recursive: true, force: true });
      rmSync(this.tlsDir, { recursive: true, force: true });
    }
  }

  /** A connection trusting the CA without checking the host (whatever the certificate names), for setup. */
  private async withTlsClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
    const url = new URL(this.url(CERTIFIED_IP));
    const client = new pg.Client({
      host: CERTIFIED_IP,
      port: Number(url.port),
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      database: 'postgres',
      ssl: { ca: readFileSync(this.caFile, 'utf8'), checkServerIdentity: () => undefined },
    });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  }
}
