import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { ConfigError } from '../config/config.js';

export interface ConnectionSettings {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  ssl: ConnectionOptions | false;
  enableChannelBinding: boolean;
}

/** Neon's pooled hosts carry `-pooler` in their first label (`ep-name-123456-pooler.region.aws.neon.tech`). */
const NEON_POOLER = /^[^.]+-pooler\./i;

/** Whether a URL points at Neon's transaction-mode pooler, where session state (locks, LISTEN) does not hold. */
export const isNeonPooler = (databaseUrl: string) => NEON_POOLER.test(new URL(databaseUrl).hostname);

/** libpq's `sslmode` values: the first three leave TLS off here (`pg` has no fallback from TLS to plain). */
const SSL_MODES = new Set(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']);
const TLS_MODES = new Set(['require', 'verify-ca', 'verify-full']);

/** Chain checked, host not: what `sslmode=verify-ca` asks for. */
const chainOnly = (): undefined => undefined;

/** The PEM text of `sslrootcert`: its file's content, or undefined (Node's default CA store) for `system`. */
function rootCertificates(sslrootcert: string | null): string | undefined {
  if (sslrootcert === null || sslrootcert === 'system') return undefined;
  try {
    return readFileSync(sslrootcert, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ConfigError([`database URL: the sslrootcert file ${sslrootcert} cannot be read (${reason})`]);
  }
}

/**
 * What `pg` needs from a connection URL. MikroORM keeps only host, port, user, password and database of its
 * `clientUrl`, so TLS (`sslmode`, `sslrootcert`) and channel binding must reach `pg` from here, through
 * `driverOptions`.
 *
 * TLS checks the certificate against the URL's host, a name or an IP address. `pg` sets the SNI `servername`
 * for names only, and without it Node would check an IP host's certificate against `localhost`: `host` in the
 * TLS options is what Node checks against then (its IP SANs for an address). Unlike libpq, `sslmode=require`
 * verifies the chain and the host, as `verify-full` does (Neon's certificates are public); `verify-ca` checks
 * the chain only. `sslrootcert=<file>` trusts only the CAs in that PEM file; `sslrootcert=system` (or none),
 * Node's default CA store. Bad TLS parameters are a ConfigError naming the parameter, never the password.
 */
export function connectionSettings(databaseUrl: string): ConnectionSettings {
  const url = new URL(databaseUrl);
  const sslrootcert = url.searchParams.get('sslrootcert') || null;
  // As libpq 16+, sslrootcert=system makes verify-full the default and refuses modes that do not check the host:
  // trusting every public CA is only safe when the name is checked too.
  const sslmode = url.searchParams.get('sslmode') ?? (sslrootcert === 'system' ? 'verify-full' : 'disable');
  if (!SSL_MODES.has(sslmode)) {
    throw new ConfigError([`database URL: sslmode=${sslmode} is not one of ${[...SSL_MODES].join(', ')}`]);
  }
  if (sslrootcert === 'system' && sslmode !== 'verify-full' && sslmode !== 'require') {
    throw new ConfigError([`database URL: sslrootcert=system needs sslmode=verify-full, not ${sslmode}`]);
  }
  // WHATWG URLs keep the brackets of an IPv6 host: `pg` and Node want the bare address.
  const host = decodeURIComponent(url.hostname).replace(/^\[(.*)\]$/, '$1') || 'localhost';
  let ssl: ConnectionOptions | false = false;
  if (TLS_MODES.has(sslmode)) {
    const ca = rootCertificates(sslrootcert);
    ssl = {
      rejectUnauthorized: true,
      host,
      ...(ca === undefined ? {} : { ca }),
      ...(sslmode === 'verify-ca' ? { checkServerIdentity: chainOnly } : {}),
    };
  }
  return {
    host,
    port: url.port ? Number(url.port) : 5432,
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: decodeURIComponent(url.pathname.replace(/^\//, '')),
    ssl,
    enableChannelBinding: url.searchParams.get('channel_binding') === 'require',
  };
}
