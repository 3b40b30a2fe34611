import { randomBytes } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import type { Config } from '../../config/config.js';
import type { Logger } from '../../observability/logger.js';

export interface IssuedToken {
  token: string;
  expiresAt: Date;
}

const ALGORITHM = 'HS256';
const ISSUER = 'todo-graphql-server';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const VERIFIED_MAX = 10_000;

/** Signs and checks the bearer tokens: HS256 JWTs carrying the user id (`sub`) and an expiry. */
export class TokenService {
  readonly #key: Uint8Array;
  readonly #ttlSeconds: number;
  /** Tokens already verified, until they expire: a client sends the same token on every request. */
  readonly #verified = new Map<string, { userId: string; expiresAt: number }>();

  constructor(config: Pick<Config, 'env' | 'jwtSecret' | 'jwtTtlSeconds'>, logger: Logger) {
    if (!config.jwtSecret) {
      // Only outside production (configuration refuses it there): tokens then last as long as the process.
      logger.warn('JWT_SECRET is unset: signing tokens with a random key; they will not survive a restart');
    }
    this.#key = config.jwtSecret ? new TextEncoder().encode(config.jwtSecret) : randomBytes(32);
    this.#ttlSeconds = config.jwtTtlSeconds;
  }

  async issue(userId: string, now = new Date()): Promise<IssuedToken> {
    const issuedAt = Math.floor(now.getTime() / 1000);
    const expiresAt = issuedAt + this.#ttlSeconds;
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
      .setSubject(userId)
      .setIssuer(ISSUER)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .sign(this.#key);
    return { token, expiresAt: new Date(expiresAt * 1000) };
  }

  /** The user id a valid token carries; undefined for a tampered, expired or malformed one. */
  async verify(token: string): Promise<string | undefined> {
    return (await this.verified(token))?.userId;
  }

  /** The user id and expiry (epoch ms) of a valid token; undefined for a tampered, expired or malformed one. */
  async verified(token: string): Promise<{ userId: string; expiresAt: number } | undefined> {
    const known = this.#verified.get(token);
    if (known) {
      if (known.expiresAt > Date.now()) return known;
      this.#verified.delete(token);
    }
    try {
      const { payload } = await jwtVerify(token, this.#key, { algorithms: [ALGORITHM], issuer: ISSUER });
      if (typeof payload.sub !== 'string' || !UUID.test(payload.sub) || typeof payload.exp !== 'number') return undefined;
      if (this.#verified.size >= VERIFIED_MAX) this.#verified.delete(this.#verified.keys().next().value!);
      const verified = { userId: payload.sub, expiresAt: payload.exp * 1000 };
      this.#verified.set(token, verified);
      return verified;
    } catch (error) {
      if (error instanceof errors.JOSEError || error instanceof TypeError) return undefined;
      throw error;
    }
  }
}
