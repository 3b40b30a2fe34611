import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { ConfigError, type Config } from '../config/config.js';
import type { Logger } from '../observability/logger.js';
import { connectionSettings } from './connection-settings.js';

export interface ServerInfo {
  host: string;
  database: string;
  serverVersion: string;
}

export class DatabaseUnreachableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DatabaseUnreachableError';
  }
}

/** A short, credential-free reason for a failed connection attempt. */
export function describeDatabaseError(error: unknown): string {
  const err = error as { code?: string; message?: string } | undefined;
  const message = err?.message || String(error);
  return err?.code ? `${err.code}: ${message}` : message;
}

/** One connection outside the pool, bounded by the connect timeout in both handshake and query, left open. */
async function openProbe(databaseUrl: string, timeoutMs: number): Promise<{ server: ServerInfo; client: pg.Client }> {
  const settings = connectionSettings(databaseUrl);
  const client = new pg.Client({ ...settings, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query<{ version: string }>(`select current_setting('server_version') as version`);
    return { server: { host: settings.host, database: settings.database, serverVersion: rows[0]!.version }, client };
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
}

/** One connection outside the pool, bounded by the connect timeout in both handshake and query. */
export async function probeServer(databaseUrl: string, timeoutMs: number): Promise<ServerInfo> {
  const { server, client } = await openProbe(databaseUrl, timeoutMs);
  await client.end().catch(() => undefined);
  return server;
}

/** Exponential backoff with full jitter: 0.5 s, 1 s, 2 s... capped at 15 s. */
export function backoffMs(attempt: number, random = Math.random): number {
  return Math.round(random() * Math.min(15_000, 500 * 2 ** attempt));
}

/**
 * Start-up's explicit connection check: MikroORM connects lazily, so a wrong URL would otherwise surface on the
 * first request. Retries `DB_CONNECT_RETRIES` times with backoff, then gives one clear reason. The connection that
 * answered is handed over open, for the caller to use (as the migration lock's) and end.
 */
export async function connectWithRetries(
  databaseUrl: string,
  config: Config,
  logger: Logger,
): Promise<{ server: ServerInfo; client: pg.Client }> {
  const attempts = config.db.connectRetries + 1;
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (attempt > 0) await sleep(backoffMs(attempt - 1));
    try {
      return await openProbe(databaseUrl, config.db.connectTimeoutMs);
    } catch (error) {
      // A setting that cannot work (an unreadable sslrootcert) will not work on the next attempt either.
      if (error instanceof ConfigError) throw error;
      lastError = error;
      logger.warn({ attempt: attempt + 1, of: attempts, reason: describeDatabaseError(error) }, 'database connection attempt failed');
    }
  }
  throw new DatabaseUnreachableError(`database unreachable after ${attempts} attempt(s): ${describeDatabaseError(lastError)}`, {
    cause: lastError,
  });
}

/** `connectWithRetries`, ending the connection. */
export async function waitForDatabase(databaseUrl: string, config: Config, logger: Logger): Promise<ServerInfo> {
  const { server, client } = await connectWithRetries(databaseUrl, config, logger);
  await client.end().catch(() => undefined);
  return server;
}
