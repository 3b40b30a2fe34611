import { createHash, randomBytes } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import type { Config } from '../../config/config.js';
import type { Logger } from '../../observability/logger.js';
import type { AccessClaims } from '../../graphql/viewer.js';

export interface IssuedToken {
  token: string;
  expiresAt: Date;
}

/** A refresh token as handed out, and the SHA-256 hash of it that is stored. */
export interface RefreshSecret {
  token: string;
  hash: Buffer;
}

/** 32 random bytes, base64url: 43 characters. */
const REFRESH_TOKEN = /^[A-Za-z0-9_-]{43}$/;

/** A new refresh token: long and random; only its hash is kept. */
export function newRefreshToken(): RefreshSecret {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: refreshHash(token) };
}

/**
 * The stored form of a refresh token, or undefined for a string that cannot be one (it is not looked up). A token
 * is found by this hash, never compared itself: how long a lookup takes can say something of the hash's bytes,
 * which help nobody find a token that has them.
 */
export function refreshHashOf(token: string): Buffer | undefined {
  return REFRESH_TOKEN.test(token) ? refreshHash(token) : undefined;
}

const refreshHash = (token: string) => createHash('sha256').update(token).digest();

const ALGORITHM = 'HS256';
const ISSUER = 'todo-graphql-server';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const VERIFIED_MAX = 10_000;

/**
 * Signs and checks the access tokens: HS256 JWTs carrying the user id (`sub`), the session (`sid`) and an expiry.
 * Whether the session is still live is the SessionGate's question, not this one's.
 */
export class TokenService {
  readonly #key: Uint8Array;
  readonly #ttlSeconds: number;
  /** Tokens already verified, until they expire: a client sends the same token on every request. */
  readonly #verified = new Map<string, AccessClaims>();

  constructor(config: Pick<Config, 'env' | 'jwtSecret' | 'jwtTtlSeconds'>, logger: Logger) {
    if (!config.jwtSecret) {
      // Only outside production (configuration refuses it there): tokens then last as long as the process.
      logger.warn('JWT_SECRET is unset: signing tokens with a random key; they will not survive a restart');
    }
    this.#key = config.jwtSecret ? new TextEncoder().encode(config.jwtSecret) : randomBytes(32);
    this.#ttlSeconds = config.jwtTtlSeconds;
  }

  async issue(userId: string, sessionId: string, now = new Date()): Promise<IssuedToken> {
    const issuedAt = Math.floor(now.getTime() / 1000);
    const expiresAt = issuedAt + this.#ttlSeconds;
    const token = await new SignJWT({ sid: sessionId })
      .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
      .setSubject(userId)
      .setIssuer(ISSUER)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .sign(this.#key);
    return { token, expiresAt: new Date(expiresAt * 1000) };
  }

  /** What a valid token says; undefined for a tampered, expired or malformed one, or one without a session. */
  async verified(token: string): Promise<AccessClaims | undefined> {
    const known = this.#verified.get(token);
    if (known) {
      if (known.expiresAt > Date.now()) return known;
      this.#verified.delete(token);
    }
    try {
      const { payload } = await jwtVerify(token, this.#key, { algorithms: [ALGORITHM], issuer: ISSUER });
      const { sub, sid, exp } = payload;
      if (typeof sub !== 'string' || !UUID.test(sub) || typeof sid !== 'string' || !UUID.test(sid) || typeof exp !== 'number')
        return undefined;
      if (this.#verified.size >= VERIFIED_MAX) this.#verified.delete(this.#verified.keys().next().value!);
      const verified = { userId: sub.toLowerCase(), sessionId: sid.toLowerCase(), expiresAt: exp * 1000 };
      this.#verified.set(token, verified);
      return verified;
    } catch (error) {
      if (error instanceof errors.JOSEError || error instanceof TypeError) return undefined;
      throw error;
    }
  }
}
