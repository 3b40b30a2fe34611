import { isIPv4, isIPv6 } from 'node:net';
import type pg from 'pg';
import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import { rateLimited } from '../graphql/errors.js';

const WINDOW_SECONDS = 60;
const TABLE = 'rate_limits';
/** A user's budget is leased to an instance in twentieths: one SQL statement per lease, not per request. */
const LEASES_PER_WINDOW = 20;

/** What a signed-in response tells its client (`RateLimit-*` headers). */
export interface Allowance {
  limit: number;
  remaining: number;
  resetSeconds: number;
}

/**
 * What the sign-in limit counts by: an IPv4 address as it is (also written as IPv6), an IPv6 address by its /64,
 * which one subscriber usually holds whole (counting each address would give an attacker 2^64 allowances).
 */
export function addressKey(ip: string): string {
  const address = ip.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped && isIPv4(mapped)) return mapped;
  if (isIPv4(address)) return address;
  if (!isIPv6(address)) return 'unknown';
  const [head = '', tail] = address.split('::');
  const groups = head === '' ? [] : head.split(':');
  if (tail !== undefined) groups.push(...Array(Math.max(0, 8 - groups.length)).fill('0'));
  return `${groups
    .slice(0, 4)
    .map((group) => parseInt(group, 16).toString(16))
    .join(':')}::/64`;
}

const secondsUntil = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/**
 * rate-limiter-flexible names its statements; behind a transaction-mode pooler a named statement prepared on one
 * server connection is missing on the next, so they are sent unnamed.
 */
function unnamed(pool: pg.Pool) {
  return { query: ({ text, values }: pg.QueryConfig) => pool.query(text, values) };
}

/**
 * A counter per key and minute in PostgreSQL, shared by every instance. When the database cannot be reached the
 * limiter counts in memory instead (its insurance), so the limits keep holding, per instance. A key that has
 * spent its points is refused from memory until its window ends: a flood from it costs no SQL.
 */
function sharedLimiter(pool: pg.Pool, keyPrefix: string, points: number, duration = WINDOW_SECONDS): RateLimiterPostgres {
  return new RateLimiterPostgres({
    storeClient: unnamed(pool),
    storeType: 'client',
    tableName: TABLE,
    tableCreated: true,
    keyPrefix,
    points,
    duration,
    inMemoryBlockOnConsumed: points,
    insuranceLimiter: new RateLimiterMemory({ keyPrefix, points, duration }),
  });
}

/**
 * Password checks one account may have per ACCOUNT_WINDOW_SECONDS (changePassword, deleteAccount), whatever
 * addresses they come from: a stolen access token cannot be used to guess the password quickly.
 */
export const ACCOUNT_PASSWORD_CHECKS = 10;
const ACCOUNT_WINDOW_SECONDS = 15 * 60;

async function consume(limiter: RateLimiterPostgres | undefined, key: string, message: string): Promise<void> {
  if (!limiter) return;
  try {
    await limiter.consume(key);
  } catch (refusal) {
    if (!(refusal instanceof RateLimiterRes)) throw refusal;
    throw rateLimited(message, secondsUntil(refusal.msBeforeNext));
  }
}

/** One instance's share of a user's budget for the current window. */
interface Lease {
  /** Leased here and not yet spent. */
  left: number;
  /** Not leased by any instance, as the database last said. */
  unleased: number;
  resetAt: number;
}

/**
 * The query-cost budget per signed-in user per minute. An instance leases a twentieth of the budget at a time
 * and spends it from memory, so the steady state sends no SQL per request; a lease never exceeds what the
 * database says is left, so instances together never spend more than the budget.
 */
class CostBudget {
  readonly #leases = new Map<string, Lease>();
  readonly #renewing = new Map<string, Promise<void>>();
  readonly #chunk: number;
  #nextSweep = 0;

  constructor(
    private readonly limiter: RateLimiterPostgres,
    private readonly limit: number,
  ) {
    this.#chunk = Math.max(1, Math.ceil(limit / LEASES_PER_WINDOW));
  }

  async spend(userId: string, cost: number): Promise<Allowance> {
    for (;;) {
      const now = Date.now();
      this.#sweep(now);
      const lease = this.#leases.get(userId);
      const current = lease && lease.resetAt > now ? lease : undefined;
      if (current && current.left >= cost) {
        current.left -= cost;
        return { limit: this.limit, remaining: current.left + current.unleased, resetSeconds: secondsUntil(current.resetAt - now) };
      }
      if (current && current.left + current.unleased < cost) throw this.#refused(current.resetAt - now);
      // One lease at a time per user: requests arriving together wait for it rather than each leasing a share.
      const pending = this.#renewing.get(userId);
      if (pending) {
        await pending;
        continue;
      }
      const renewal = this.#renew(userId, current, cost, now);
      this.#renewing.set(
        userId,
        renewal.then(
          () => undefined,
          () => undefined,
        ),
      );
      try {
        await renewal;
      } finally {
        this.#renewing.delete(userId);
      }
    }
  }

  /**
   * Leases at least what `cost` lacks, and up to a twentieth of the budget, never more than is left. Requests
   * keep spending the current lease meanwhile: what it holds is read again once the database has answered.
   */
  async #renew(userId: string, lease: Lease | undefined, cost: number, now: number): Promise<void> {
    const want = Math.max(cost - (lease?.left ?? 0), Math.min(this.#chunk, lease?.unleased ?? this.limit));
    try {
      const granted = await this.limiter.consume(userId, want);
      this.#leases.set(userId, { left: (lease?.left ?? 0) + want, unleased: granted.remainingPoints, resetAt: now + granted.msBeforeNext });
    } catch (refusal) {
      if (!(refusal instanceof RateLimiterRes)) throw refusal;
      this.#leases.set(userId, { left: lease?.left ?? 0, unleased: 0, resetAt: now + refusal.msBeforeNext });
      throw this.#refused(refusal.msBeforeNext);
    }
  }

  #refused(ms: number) {
    return rateLimited('The query cost budget for this minute is spent', secondsUntil(ms));
  }

  #sweep(now: number): void {
    if (now < this.#nextSweep) return;
    this.#nextSweep = now + WINDOW_SECONDS * 1000;
    for (const [key, lease] of this.#leases) if (lease.resetAt <= now) this.#leases.delete(key);
  }
}

export interface RateLimitSettings {
  /** Password checks and refreshes per client IP per minute (each its own count); 0: off, the account limit too. */
  authRateLimit: number;
  /** Query cost per signed-in user per minute; 0: off. */
  costRateLimit: number;
}

/** The rate limits every instance shares through PostgreSQL. */
export class RateLimits {
  readonly #auth: RateLimiterPostgres | undefined;
  readonly #refresh: RateLimiterPostgres | undefined;
  readonly #account: RateLimiterPostgres | undefined;
  readonly #cost: CostBudget | undefined;
  /** A signed-in user's cost budget per minute (0: none). */
  readonly costLimit: number;

  constructor(pool: pg.Pool, { authRateLimit, costRateLimit }: RateLimitSettings) {
    this.costLimit = costRateLimit;
    this.#auth = authRateLimit > 0 ? sharedLimiter(pool, 'auth', authRateLimit) : undefined;
    this.#refresh = authRateLimit > 0 ? sharedLimiter(pool, 'refresh', authRateLimit) : undefined;
    this.#account = authRateLimit > 0 ? sharedLimiter(pool, 'account', ACCOUNT_PASSWORD_CHECKS, ACCOUNT_WINDOW_SECONDS) : undefined;
    this.#cost = costRateLimit > 0 ? new CostBudget(sharedLimiter(pool, 'cost', costRateLimit), costRateLimit) : undefined;
  }

  /**
   * One password check (signUp, signIn, changePassword, deleteAccount) from `ip`, and, when signed in, against the
   * account; RATE_LIMITED past either limit.
   */
  async passwordAttempt(ip: string, userId: string | undefined): Promise<void> {
    await consume(this.#auth, addressKey(ip), 'Too many password attempts from this address; try again later');
    if (userId) await consume(this.#account, userId, 'Too many password attempts for this account; try again later');
  }

  /** One refreshSession from `ip`; RATE_LIMITED past the limit. */
  async refreshAttempt(ip: string): Promise<void> {
    await consume(this.#refresh, addressKey(ip), 'Too many session refreshes from this address; try again later');
  }

  /** The keys of the rows that count a user's requests (erased with the account). */
  static keysOf(userId: string): string[] {
    return [`cost:${userId}`, `account:${userId}`];
  }

  /** Charges a signed-in user's operation; RATE_LIMITED when the budget cannot pay for it. */
  async spend(userId: string, cost: number): Promise<Allowance | undefined> {
    return this.#cost?.spend(userId, cost);
  }
}
