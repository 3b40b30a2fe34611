import type { ConnectionOptions } from 'node:tls';

export interface ConnectionSettings {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  ssl: ConnectionOptions | false;
  enableChannelBinding: boolean;
}

const TLS_MODES = new Set(['require', 'verify-ca', 'verify-full']);

/**
 * What `pg` needs from a connection URL. MikroORM keeps only host, port, user, password and database of its
 * `clientUrl`, so TLS (`sslmode`) and channel binding must reach `pg` from here, through `driverOptions`.
 * Like `pg` itself, `sslmode=require` verifies the certificate: Neon's certificates are public.
 */
export function connectionSettings(databaseUrl: string): ConnectionSettings {
  const url = new URL(databaseUrl);
  const sslmode = url.searchParams.get('sslmode') ?? 'disable';
  return {
    host: decodeURIComponent(url.hostname) || 'localhost',
    port: url.port ? Number(url.port) : 5432,
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: decodeURIComponent(url.pathname.replace(/^\//, '')),
    ssl: TLS_MODES.has(sslmode) ? { rejectUnauthorized: true } : false,
    enableChannelBinding: url.searchParams.get('channel_binding') === 'require',
  };
}
