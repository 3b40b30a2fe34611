import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { PROJECT_ROOT } from './app-version.js';
import { bool, cleanEnv, EnvMissingError, makeValidator, str } from 'envalid';

export type NodeEnv = 'development' | 'test' | 'production';

export interface DatabasePoolConfig {
  min: number;
  max: number;
  idleTimeoutMs: number;
  acquireTimeoutMs: number;
  maxLifetimeS: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  connectRetries: number;
}

export interface Config {
  env: NodeEnv;
  host: string;
  port: number;
  /** Unset outside production: the server starts an embedded PostgreSQL. */
  databaseUrl: string | undefined;
  /** Unpooled URL for migrations; falls back to `databaseUrl`. */
  databaseDirectUrl: string | undefined;
  db: DatabasePoolConfig;
  jwtSecret: string | undefined;
  /** Access token lifetime in seconds (`JWT_EXPIRES_IN`). */
  jwtTtlSeconds: number;
  /** Refresh token and idle session lifetime in seconds (`REFRESH_TOKEN_TTL`). */
  refreshTtlSeconds: number;
  /** Live sessions one user may hold; signing in past it ends the least recently used. */
  sessionsPerUser: number;
  /** Largest accepted request body, in bytes. */
  bodyLimitBytes: number;
  /** GraphQL operations deeper or costlier than these are refused before they run. */
  maxQueryDepth: number;
  maxQueryCost: number;
  /** Aliased fields one operation may hold, and tokens one document may hold (beyond it the parser stops). */
  maxQueryAliases: number;
  maxQueryTokens: number;
  /** Origins allowed to call `/graphql` from a browser: a list, or in development any local origin. */
  corsOrigins: string[] | 'local';
  /** Proxies in front whose `X-Forwarded-For` entry is believed; 0: the socket's address. */
  trustProxy: number;
  /** signIn and signUp attempts per client IP per minute; query cost per user per minute (0: off). */
  authRateLimit: number;
  costRateLimit: number;
  /** Persisted-documents manifest (absolute, or relative to the project): when set, only its operations run. */
  trustedDocuments: string | undefined;
  /** How long the change log behind `taskChanges(after:)` keeps changes. */
  changesRetentionHours: number;
  /** Open `taskChanges` subscriptions one user may hold on one instance, across transports. */
  subscriptionsPerUser: number;
  /** Bytes one subscription may hold for a slow reader; past it, it ends with a retryable error. */
  subscriptionBufferBytes: number;
  /** Bytes every subscription and stream of the process may hold for slow readers; past it the largest are cut. */
  subscriptionBufferTotalBytes: number;
  /** Open connections (HTTP, WebSocket, Server-Sent Events) of the process; past it new ones are refused. */
  maxConnections: number;
  /** Open WebSocket and Server-Sent Events streams per client IP (as TRUST_PROXY derives it); 0: no cap. */
  maxStreamsPerIp: number;
  /** A connection that has not sent its whole request (headers, upgrade, body) within this is closed. */
  requestHeadersTimeoutMs: number;
  /** On SIGTERM, how long in-flight requests may take before their connections are cut. */
  shutdownGraceMs: number;
  logLevel: string;
  migrateOnStart: boolean;
  bcryptRounds: number;
  /** Clear password of the seeded `test@example.com`; no default in production. */
  seedUserPassword: string | undefined;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const postgresUrl = makeValidator<string>((input) => {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new Error('not a URL');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw new Error('not a postgres URL');
  return input;
});

const intWithin = (min: number, max: number) =>
  makeValidator<number>((input) => {
    const value = Number(input);
    if (!/^\d+$/.test(String(input).trim()) || value < min || value > max) throw new Error('out of range');
    return value;
  });

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;
/** Ten years: a token's expiry stays a date every library and PostgreSQL can hold. */
const DURATION_MAX_SECONDS = 3650 * 86_400;
const durationSeconds = makeValidator<number>((input) => {
  const match = /^(\d+)\s*(s|m|h|d)?$/.exec(input.trim());
  const seconds = match ? Number(match[1]) * UNIT_SECONDS[(match[2] ?? 's') as keyof typeof UNIT_SECONDS] : 0;
  if (seconds < 1 || seconds > DURATION_MAX_SECONDS) throw new Error('not a duration');
  return seconds;
});

const BYTE_UNITS = { b: 1, kb: 1024, mb: 1024 * 1024 } as const;
const byteSize = makeValidator<number>((input) => {
  const match = /^(\d+)\s*(b|kb|mb)?$/i.exec(input.trim());
  const bytes = match ? Number(match[1]) * BYTE_UNITS[(match[2]?.toLowerCase() ?? 'b') as keyof typeof BYTE_UNITS] : 0;
  if (bytes < 1024 || bytes > 50 * 1024 * 1024) throw new Error('out of range');
  return bytes;
});

/** `https://app.example.com,http://localhost:5173`: origins as browsers send them (scheme, host, port; no path). */
const originList = makeValidator<string[]>((input) => {
  const origins = input
    .split(',')
    .map((origin) => origin.trim())
    .filter(Boolean);
  for (const origin of origins) {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      throw new Error('not an origin');
    }
    if (!['http:', 'https:'].includes(url.protocol) || url.origin !== origin) throw new Error('not an origin');
  }
  return origins;
});

const secret = makeValidator<string>((input) => {
  if (input.length < 32) throw new Error('too short');
  return input;
});

const MAX_MS = 24 * 60 * 60 * 1000;
/** Documented in docs/configuration.md; the seeder refuses it in production. */
export const DEV_SEED_PASSWORD = 'todo-dev-password';

/** What each variable must be; printed instead of the value, so a secret never reaches the output. */
const specs = {
  NODE_ENV: str({ choices: ['development', 'test', 'production'], desc: 'one of development, test, production' }),
  HOST: str({ default: '127.0.0.1', desc: 'a host name or address to listen on' }),
  PORT: intWithin(1024, 65535)({ default: 4000, desc: 'an integer within 1024..65535' }),
  DATABASE_URL: postgresUrl({
    default: undefined,
    requiredWhen: (env) => env.NODE_ENV === 'production',
    desc: 'a postgres:// or postgresql:// URL (required in production)',
  }),
  DATABASE_DIRECT_URL: postgresUrl({ default: undefined, desc: 'a postgres:// or postgresql:// URL' }),
  DB_POOL_MIN: intWithin(0, 1000)({ default: 0, desc: 'an integer within 0..1000' }),
  DB_POOL_MAX: intWithin(1, 1000)({ default: 10, desc: 'an integer within 1..1000' }),
  DB_POOL_IDLE_TIMEOUT_MS: intWithin(1, MAX_MS)({ default: 10_000, desc: 'milliseconds, a positive integer' }),
  DB_POOL_ACQUIRE_TIMEOUT_MS: intWithin(1, MAX_MS)({ default: 5_000, desc: 'milliseconds, a positive integer' }),
  DB_POOL_MAX_LIFETIME_S: intWithin(0, 7 * 24 * 3600)({ default: 3600, desc: 'seconds, 0 (no limit) or more' }),
  DB_CONNECT_TIMEOUT_MS: intWithin(1, MAX_MS)({ default: 10_000, desc: 'milliseconds, a positive integer' }),
  DB_STATEMENT_TIMEOUT_MS: intWithin(0, MAX_MS)({ default: 15_000, desc: 'milliseconds, 0 (no limit) or more' }),
  DB_CONNECT_RETRIES: intWithin(0, 100)({ default: 5, devDefault: 0, desc: 'an integer within 0..100' }),
  JWT_SECRET: secret({
    default: undefined,
    requiredWhen: (env) => env.NODE_ENV === 'production',
    desc: 'at least 32 characters (required in production)',
  }),
  JWT_EXPIRES_IN: durationSeconds({ default: 900, desc: 'a duration such as 3600, 90s, 15m, 1h or 7d, at most 3650d' }),
  REFRESH_TOKEN_TTL: durationSeconds({ default: 30 * 24 * 3600, desc: 'a duration such as 3600, 90s, 15m, 1h or 30d, at most 3650d' }),
  SESSIONS_PER_USER: intWithin(1, 1000)({ default: 20, desc: 'an integer within 1..1000' }),
  HTTP_BODY_LIMIT: byteSize({ default: 100 * 1024, desc: 'a size from 1kb to 50mb, such as 100kb' }),
  GRAPHQL_MAX_DEPTH: intWithin(2, 100)({ default: 8, desc: 'an integer within 2..100' }),
  GRAPHQL_MAX_COST: intWithin(10, 1_000_000)({ default: 3000, desc: 'an integer within 10..1000000' }),
  GRAPHQL_MAX_ALIASES: intWithin(0, 1000)({ default: 30, desc: 'an integer within 0..1000' }),
  GRAPHQL_MAX_TOKENS: intWithin(100, 100_000)({ default: 2000, desc: 'an integer within 100..100000' }),
  CORS_ORIGINS: originList({
    default: undefined,
    desc: 'comma-separated origins such as https://app.example.com,http://localhost:5173',
  }),
  TRUST_PROXY: intWithin(0, 10)({ default: 0, desc: 'an integer within 0..10' }),
  AUTH_RATE_LIMIT: intWithin(0, 1_000_000)({ default: 20, desc: 'attempts per minute, 0 (off) or more' }),
  COST_RATE_LIMIT: intWithin(0, 1_000_000_000)({ default: 60_000, desc: 'cost per minute, 0 (off) or more' }),
  TRUSTED_DOCUMENTS: str({ default: undefined, desc: 'the path of a persisted-documents manifest (JSON)' }),
  CHANGES_RETENTION_HOURS: intWithin(1, 24 * 365)({ default: 24, desc: 'hours within 1..8760' }),
  SUBSCRIPTIONS_PER_USER: intWithin(1, 1000)({ default: 20, desc: 'an integer within 1..1000' }),
  SUBSCRIPTION_BUFFER_BYTES: intWithin(1024, 1024 ** 3)({ default: 1024 * 1024, desc: 'bytes within 1024..1073741824' }),
  SUBSCRIPTION_BUFFER_TOTAL_BYTES: intWithin(1024, 16 * 1024 ** 3)({ default: 64 * 1024 * 1024, desc: 'bytes within 1024..17179869184' }),
  MAX_CONNECTIONS: intWithin(1, 1_000_000)({ default: 10_000, desc: 'an integer within 1..1000000' }),
  MAX_STREAMS_PER_IP: intWithin(0, 1_000_000)({ default: 500, desc: 'an integer within 0 (no cap)..1000000' }),
  REQUEST_HEADERS_TIMEOUT_MS: intWithin(100, 600_000)({ default: 10_000, desc: 'milliseconds within 100..600000' }),
  SHUTDOWN_GRACE_MS: intWithin(0, 600_000)({ default: 10_000, desc: 'milliseconds within 0..600000' }),
  LOG_LEVEL: str({
    choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    default: 'info',
    desc: 'one of fatal, error, warn, info, debug, trace, silent',
  }),
  MIGRATE_ON_START: bool({ default: true, desc: 'true or false' }),
  BCRYPT_ROUNDS: intWithin(4, 15)({ default: 12, desc: 'an integer within 4..15' }),
  SEED_USER_PASSWORD: str({
    default: undefined,
    devDefault: DEV_SEED_PASSWORD,
    desc: "the seeded user's password, 8..128 characters (required in production)",
  }),
};

/**
 * Validates the raw environment once. Every bad variable is reported in one ConfigError; values are never
 * echoed, only what the variable must be.
 */
/** The names of every variable the configuration reads (docs/configuration.md lists each). */
export const CONFIG_VARIABLES: readonly string[] = Object.freeze(Object.keys(specs));

export function parseConfig(raw: Record<string, string | undefined>): Config {
  const input = { ...raw, NODE_ENV: raw.NODE_ENV || 'development' };
  const env = cleanEnv(input, specs, {
    reporter: ({ errors }) => {
      const keys = Object.keys(errors) as (keyof typeof specs)[];
      if (keys.length === 0) return;
      throw new ConfigError(
        keys.map((key) => `${key} ${errors[key] instanceof EnvMissingError ? 'is required' : 'is invalid'}: must be ${specs[key].desc}`),
      );
    },
  });
  const problems: string[] = [];
  if (env.DB_POOL_MIN > env.DB_POOL_MAX) problems.push('DB_POOL_MIN is invalid: must not exceed DB_POOL_MAX');
  if (env.SUBSCRIPTION_BUFFER_BYTES > env.SUBSCRIPTION_BUFFER_TOTAL_BYTES) {
    problems.push('SUBSCRIPTION_BUFFER_BYTES is invalid: must not exceed SUBSCRIPTION_BUFFER_TOTAL_BYTES');
  }
  // A session ends once unused for REFRESH_TOKEN_TTL: its access token would be refused before its own expiry, and a
  // client that refreshes shortly before that expiry, as clients do, would find the session already gone.
  if (env.REFRESH_TOKEN_TTL <= env.JWT_EXPIRES_IN) problems.push('REFRESH_TOKEN_TTL is invalid: must exceed JWT_EXPIRES_IN');
  if (problems.length > 0) throw new ConfigError(problems);

  return Object.freeze({
    env: env.NODE_ENV as NodeEnv,
    host: env.HOST,
    port: env.PORT,
    databaseUrl: env.DATABASE_URL,
    databaseDirectUrl: env.DATABASE_DIRECT_URL ?? env.DATABASE_URL,
    db: Object.freeze({
      min: env.DB_POOL_MIN,
      max: env.DB_POOL_MAX,
      idleTimeoutMs: env.DB_POOL_IDLE_TIMEOUT_MS,
      acquireTimeoutMs: env.DB_POOL_ACQUIRE_TIMEOUT_MS,
      maxLifetimeS: env.DB_POOL_MAX_LIFETIME_S,
      connectTimeoutMs: env.DB_CONNECT_TIMEOUT_MS,
      statementTimeoutMs: env.DB_STATEMENT_TIMEOUT_MS,
      connectRetries: env.DB_CONNECT_RETRIES,
    }),
    jwtSecret: env.JWT_SECRET,
    jwtTtlSeconds: env.JWT_EXPIRES_IN,
    refreshTtlSeconds: env.REFRESH_TOKEN_TTL,
    sessionsPerUser: env.SESSIONS_PER_USER,
    bodyLimitBytes: env.HTTP_BODY_LIMIT,
    maxQueryDepth: env.GRAPHQL_MAX_DEPTH,
    maxQueryCost: env.GRAPHQL_MAX_COST,
    maxQueryAliases: env.GRAPHQL_MAX_ALIASES,
    maxQueryTokens: env.GRAPHQL_MAX_TOKENS,
    corsOrigins: env.CORS_ORIGINS ?? (env.NODE_ENV === 'production' ? [] : 'local'),
    trustProxy: env.TRUST_PROXY,
    authRateLimit: env.AUTH_RATE_LIMIT,
    costRateLimit: env.COST_RATE_LIMIT,
    trustedDocuments: env.TRUSTED_DOCUMENTS === undefined ? undefined : resolve(PROJECT_ROOT, env.TRUSTED_DOCUMENTS),
    changesRetentionHours: env.CHANGES_RETENTION_HOURS,
    subscriptionsPerUser: env.SUBSCRIPTIONS_PER_USER,
    subscriptionBufferBytes: env.SUBSCRIPTION_BUFFER_BYTES,
    subscriptionBufferTotalBytes: env.SUBSCRIPTION_BUFFER_TOTAL_BYTES,
    maxConnections: env.MAX_CONNECTIONS,
    maxStreamsPerIp: env.MAX_STREAMS_PER_IP,
    requestHeadersTimeoutMs: env.REQUEST_HEADERS_TIMEOUT_MS,
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
    logLevel: env.LOG_LEVEL,
    migrateOnStart: env.MIGRATE_ON_START,
    bcryptRounds: env.BCRYPT_ROUNDS,
    seedUserPassword: env.SEED_USER_PASSWORD,
  });
}

/** The process environment over the `.env` file beside package.json: the environment wins. */
export function readEnvironment(envFile = join(PROJECT_ROOT, '.env')): Record<string, string | undefined> {
  const fromFile = existsSync(envFile) ? parseEnv(readFileSync(envFile, 'utf8')) : {};
  return { ...fromFile, ...process.env };
}

let cached: Config | undefined;

/** The configuration of this process, validated on first use. */
export function loadConfig(): Config {
  cached ??= parseConfig(readEnvironment());
  return cached;
}
