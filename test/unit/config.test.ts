import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseConfig, readEnvironment } from '../../src/config/config.js';

const SECRET = 'a-very-secret-signing-key-of-40-characters!';
const PROD = { NODE_ENV: 'production', DATABASE_URL: 'postgresql://app:pw@db.example.com/todo', JWT_SECRET: SECRET };

function problemsOf(env: Record<string, string>): string[] {
  try {
    parseConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  it('gives the contract’s defaults for an empty environment', () => {
    expect(parseConfig({})).toEqual({
      env: 'development',
      host: '127.0.0.1',
      port: 4000,
      databaseUrl: undefined,
      databaseDirectUrl: undefined,
      db: {
        min: 0,
        max: 10,
        idleTimeoutMs: 10_000,
        acquireTimeoutMs: 5_000,
        maxLifetimeS: 3600,
        connectTimeoutMs: 10_000,
        statementTimeoutMs: 15_000,
        connectRetries: 0,
      },
      jwtSecret: undefined,
      jwtTtlSeconds: 900,
      refreshTtlSeconds: 2_592_000,
      sessionsPerUser: 20,
      bodyLimitBytes: 102_400,
      maxQueryDepth: 8,
      maxQueryCost: 3000,
      maxQueryAliases: 30,
      maxQueryTokens: 2000,
      corsOrigins: 'local',
      trustProxy: 0,
      authRateLimit: 20,
      costRateLimit: 60_000,
      trustedDocuments: undefined,
      changesRetentionHours: 24,
      subscriptionsPerUser: 20,
      subscriptionBufferBytes: 1_048_576,
      subscriptionBufferTotalBytes: 67_108_864,
      maxConnections: 10_000,
      maxStreamsPerIp: 500,
      requestHeadersTimeoutMs: 10_000,
      shutdownGraceMs: 10_000,
      logLevel: 'info',
      migrateOnStart: true,
      bcryptRounds: 12,
      seedUserPassword: 'todo-dev-password',
    });
  });

  it('retries the connection 5 times by default in production, and none elsewhere', () => {
    expect(parseConfig(PROD).db.connectRetries).toBe(5);
    expect(parseConfig({ NODE_ENV: 'test' }).db.connectRetries).toBe(0);
    expect(parseConfig({ ...PROD, DB_CONNECT_RETRIES: '2' }).db.connectRetries).toBe(2);
  });

  it('uses DATABASE_URL for migrations unless DATABASE_DIRECT_URL is given', () => {
    expect(parseConfig(PROD).databaseDirectUrl).toBe(PROD.DATABASE_URL);
    const direct = 'postgres://app:pw@direct.example.com/todo';
    expect(parseConfig({ ...PROD, DATABASE_DIRECT_URL: direct }).databaseDirectUrl).toBe(direct);
  });

  it('names every bad variable in one error, with what it must be', () => {
    const problems = problemsOf({
      PORT: '80',
      DATABASE_URL: 'mysql://root@localhost/db',
      DB_POOL_MAX: 'many',
      JWT_SECRET: 'short',
      LOG_LEVEL: 'loud',
      MIGRATE_ON_START: 'maybe',
    });
    expect(problems).toEqual([
      'PORT is invalid: must be an integer within 1024..65535',
      'DATABASE_URL is invalid: must be a postgres:// or postgresql:// URL (required in production)',
      'DB_POOL_MAX is invalid: must be an integer within 1..1000',
      'JWT_SECRET is invalid: must be at least 32 characters (required in production)',
      'LOG_LEVEL is invalid: must be one of fatal, error, warn, info, debug, trace, silent',
      'MIGRATE_ON_START is invalid: must be true or false',
    ]);
  });

  it('accepts PORT at both ends of its range and refuses just outside', () => {
    expect(parseConfig({ PORT: '1024' }).port).toBe(1024);
    expect(parseConfig({ PORT: '65535' }).port).toBe(65535);
    expect(problemsOf({ PORT: '1023' })).toHaveLength(1);
    expect(problemsOf({ PORT: '65536' })).toHaveLength(1);
    expect(problemsOf({ PORT: '4000.5' })).toHaveLength(1);
  });

  it('requires DATABASE_URL and JWT_SECRET in production', () => {
    expect(problemsOf({ NODE_ENV: 'production' })).toEqual([
      'DATABASE_URL is required: must be a postgres:// or postgresql:// URL (required in production)',
      'JWT_SECRET is required: must be at least 32 characters (required in production)',
    ]);
  });

  it('never prints a value, so a secret cannot leak through the message', () => {
    const leaky = 'postgres-password-123';
    try {
      parseConfig({ JWT_SECRET: leaky, DATABASE_URL: `ftp://u:${leaky}@host/db` });
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect((error as Error).message).not.toContain(leaky);
      expect((error as Error).message).toMatch(/JWT_SECRET/);
    }
  });

  it('reads token lifetimes and body limits with their units', () => {
    expect(parseConfig({ JWT_EXPIRES_IN: '900' }).jwtTtlSeconds).toBe(900);
    expect(parseConfig({ JWT_EXPIRES_IN: '15m' }).jwtTtlSeconds).toBe(900);
    expect(parseConfig({ JWT_EXPIRES_IN: '7d' }).jwtTtlSeconds).toBe(604_800);
    expect(parseConfig({ HTTP_BODY_LIMIT: '1mb' }).bodyLimitBytes).toBe(1_048_576);
    expect(problemsOf({ JWT_EXPIRES_IN: 'soon', HTTP_BODY_LIMIT: '10' })).toEqual([
      'JWT_EXPIRES_IN is invalid: must be a duration such as 3600, 90s, 15m, 1h or 7d, at most 3650d',
      'HTTP_BODY_LIMIT is invalid: must be a size from 1kb to 50mb, such as 100kb',
    ]);
  });

  it('refuses token lifetimes past ten years, and a refresh token that would not outlive its access token', () => {
    expect(parseConfig({ REFRESH_TOKEN_TTL: '3650d' }).refreshTtlSeconds).toBe(3650 * 86_400);
    expect(problemsOf({ REFRESH_TOKEN_TTL: '99999999d' })).toEqual([
      'REFRESH_TOKEN_TTL is invalid: must be a duration such as 3600, 90s, 15m, 1h or 30d, at most 3650d',
    ]);
    expect(problemsOf({ JWT_EXPIRES_IN: '1h', REFRESH_TOKEN_TTL: '60m' })).toEqual([
      'REFRESH_TOKEN_TTL is invalid: must exceed JWT_EXPIRES_IN',
    ]);
    expect(parseConfig({ JWT_EXPIRES_IN: '1h', REFRESH_TOKEN_TTL: '61m' }).refreshTtlSeconds).toBe(3660);
  });

  it('refuses a pool whose minimum exceeds its maximum', () => {
    expect(problemsOf({ DB_POOL_MIN: '5', DB_POOL_MAX: '2' })).toEqual(['DB_POOL_MIN is invalid: must not exceed DB_POOL_MAX']);
  });

  it('reads .env beside package.json, and the environment wins over it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'todo-env-'));
    const file = join(dir, '.env');
    writeFileSync(file, 'PORT=5000\nLOG_LEVEL=debug\n');
    const before = process.env.PORT;
    process.env.PORT = '6000';
    try {
      const env = readEnvironment(file);
      expect(parseConfig(env)).toMatchObject({ port: 6000, logLevel: 'debug' });
    } finally {
      if (before === undefined) delete process.env.PORT;
      else process.env.PORT = before;
    }
  });
});
