import { UniqueConstraintViolationException, type EntityManager } from '@mikro-orm/postgresql';
import { inTransaction } from '../../db/transaction.js';
import { badUserInput, conflict, unauthenticated } from '../../graphql/errors.js';
import { invalidToken, type Viewer } from '../../graphql/viewer.js';
import { RateLimits } from '../../guards/rate-limits.js';
import type { Logger } from '../../observability/logger.js';
import { isStorableText, storableText } from '../text.js';
import { HashGate, hashPassword, PASSWORD_MAX, PASSWORD_MIN, unmatchableHash, verifyPassword } from './password.js';
import type { SessionGate } from './session.gate.js';
import {
  createSession,
  endSessions,
  eraseUser,
  liveSessions,
  pruneSessions,
  renewRefresh,
  rotateRefresh,
  type IssuedRefresh,
} from './session.store.js';
import { refreshHashOf, type TokenService } from './tokens.js';
import { User } from './user.entity.js';
import { SignOutScope, type AuthPayload, type SessionView, type SignUpInput } from './user.types.js';

type SignedIn = Extract<Viewer, { kind: 'user' }>;

/** Expired sessions and refresh tokens are pruned at most this often, after sessions were made or renewed here. */
const PRUNE_EVERY_MS = 5 * 60_000;

const EMAIL = /^[^\s@]+@[^\s@]+$/;
const EMAIL_MAX = 320;
const NAME_MAX = 200;

/** Emails are trimmed and lower-cased, so that they compare case-insensitively. */
export function normalizeEmail(raw: string): string {
  const email = raw.trim().toLowerCase();
  if (email.length > EMAIL_MAX || !EMAIL.test(email) || !isStorableText(email)) throw badUserInput('Enter a valid email address', 'email');
  return email;
}

export function checkPassword(password: string, field = 'password'): string {
  const length = [...password].length;
  if (length < PASSWORD_MIN || length > PASSWORD_MAX) {
    throw badUserInput(`The password must be ${PASSWORD_MIN} to ${PASSWORD_MAX} characters`, field);
  }
  return password;
}

export function normalizeName(raw: string | null | undefined): string | null {
  const name = raw?.trim() ?? '';
  storableText(name, 'name');
  if ([...name].length > NAME_MAX) throw badUserInput(`The name must be at most ${NAME_MAX} characters`, 'name');
  return name === '' ? null : name;
}

/** Where a session is created from: the client's `User-Agent`, kept as a label for the sessions list. */
export interface SessionOrigin {
  userAgent?: string | undefined;
}

const USER_AGENT_MAX = 200;

/** A `User-Agent` as a session keeps it: at most 200 characters, nothing PostgreSQL cannot store; null when empty. */
function userAgentLabel(raw: string | undefined): string | null {
  const label = [...(raw ?? '').trim()].slice(0, USER_AGENT_MAX).join('');
  return label !== '' && isStorableText(label) ? label : null;
}

export interface SessionSettings {
  /** Refresh token and idle session lifetime (seconds); live sessions per user. */
  refreshTtlSeconds: number;
  sessionsPerUser: number;
}

/**
 * Accounts and their sessions: sign-up, sign-in, refresh, sign-out, password change and deletion. Every session
 * that ends is announced by the transaction that ends it, and told to this instance's gate at once.
 */
export class AuthService {
  /** Compared against when the email is unknown, so that both failures cost one bcrypt comparison. */
  readonly #dummyHash: string;
  readonly #hashes = new HashGate();
  #lastPrune = 0;

  constructor(
    private readonly tokens: TokenService,
    private readonly gate: SessionGate,
    private readonly settings: SessionSettings,
    private readonly bcryptRounds: number,
    /** Told of each bcrypt operation (the password_hashes_total metric). */
    private readonly onHash: (kind: 'hash' | 'compare') => void = () => undefined,
    private readonly logger?: Logger,
  ) {
    this.#dummyHash = unmatchableHash(bcryptRounds);
  }

  async signUp(em: EntityManager, input: SignUpInput, origin: SessionOrigin = {}): Promise<AuthPayload> {
    const email = normalizeEmail(input.email);
    const password = checkPassword(input.password);
    const name = normalizeName(input.name);
    // Hash before touching the database, so no connection is held during the slow part.
    const passwordHash = await this.#hash(password);
    let user: User;
    const created = await inTransaction(em, async (tx) => {
      user = tx.create(User, { email, name, passwordHash });
      await tx.flush();
      return this.#openSession(tx, user.id, origin);
    }).catch((error: unknown) => {
      throw error instanceof UniqueConstraintViolationException ? conflict('An account with this email already exists') : error;
    });
    return this.#payload(user!, this.#opened(em, created));
  }

  /** A wrong email and a wrong password answer alike, after the same bcrypt work. */
  async signIn(em: EntityManager, rawEmail: string, password: string, origin: SessionOrigin = {}): Promise<AuthPayload> {
    const email = rawEmail.trim().toLowerCase();
    // An email that could not have signed up is not looked up (PostgreSQL refuses NUL), but costs the same work.
    const user = email.length <= EMAIL_MAX && isStorableText(email) ? await em.findOne(User, { email }) : null;
    const hash = user?.passwordHash ?? this.#dummyHash;
    const matches = await this.#compare(password, hash);
    if (!user || !matches) throw unauthenticated('Wrong email or password');
    const created = await inTransaction(em, (tx) => this.#openSession(tx, user.id, origin));
    return this.#payload(user, this.#opened(em, created));
  }

  /**
   * Spends a refresh token and answers a new pair for its session. A spent token presented again ends its
   * session: whoever holds the newer pair, owner or thief, must sign in again.
   */
  async refresh(em: EntityManager, refreshToken: string): Promise<AuthPayload> {
    const refused = () => unauthenticated('The refresh token is invalid, spent or expired: sign in again');
    const hash = refreshHashOf(refreshToken);
    if (!hash) throw refused();
    const rotation = await inTransaction(em, (tx) => rotateRefresh(tx, hash, this.settings.refreshTtlSeconds));
    if (rotation.kind === 'reused') {
      this.gate.ended([rotation.sessionId]);
      this.logger?.warn({ sessionId: rotation.sessionId }, 'a spent refresh token was presented again: its session has ended');
    }
    if (rotation.kind !== 'rotated') throw refused();
    const user = await em.findOne(User, rotation.userId);
    if (!user) throw refused();
    this.#pruneIfDue(em);
    return this.#payload(user, rotation.issued);
  }

  /** Ends this session, every other one of the user, or all of them. */
  async signOut(em: EntityManager, viewer: SignedIn, scope: SignOutScope): Promise<boolean> {
    const ended = await inTransaction(em, (tx) =>
      scope === SignOutScope.THIS
        ? endSessions(tx, { sessionIds: [viewer.sessionId] })
        : endSessions(tx, { userId: viewer.userId, except: scope === SignOutScope.OTHERS ? viewer.sessionId : undefined }),
    );
    this.gate.ended(ended);
    return true;
  }

  /** The user's live sessions, most recently used first, with the caller's marked. */
  async sessions(em: EntityManager, viewer: SignedIn): Promise<SessionView[]> {
    const rows = await liveSessions(em, viewer.userId);
    return rows.map((row) => ({
      id: row.id,
      createdAt: row.created_at,
      lastUsedAt: row.last_used_at,
      userAgent: row.user_agent,
      current: row.id === viewer.sessionId,
    }));
  }

  /** Checks the current password like signIn, then sets the new one, ends every other session and renews this one. */
  async changePassword(em: EntityManager, viewer: SignedIn, currentPassword: string, newPassword: string): Promise<AuthPayload> {
    const password = checkPassword(newPassword, 'newPassword');
    const user = await this.#confirm(em, viewer, currentPassword);
    const passwordHash = await this.#hash(password);
    const { issued, ended } = await inTransaction(em, async (tx) => {
      const updated = await tx.execute<{ id: string }[]>(
        'update users set password_hash = ?, updated_at = now() where id = ? returning id',
        [passwordHash, user.id],
      );
      if (updated.length === 0) throw invalidToken();
      const ended = await endSessions(tx, { userId: user.id, except: viewer.sessionId });
      // Signed out meanwhile (while the password was being checked): nothing is written.
      const issued = await renewRefresh(tx, viewer.sessionId, this.settings.refreshTtlSeconds);
      if (!issued) throw invalidToken();
      return { issued, ended };
    });
    this.gate.ended(ended);
    return this.#payload(user, issued);
  }

  /** Checks the password like signIn, then erases the user and all of theirs; their subscriptions end. */
  async deleteAccount(em: EntityManager, viewer: SignedIn, password: string): Promise<boolean> {
    await this.#confirm(em, viewer, password);
    const ended = await inTransaction(em, (tx) => eraseUser(tx, viewer.userId, RateLimits.keysOf(viewer.userId)));
    if (!ended) throw invalidToken();
    this.gate.ended(ended);
    return true;
  }

  /** The signed-in user, if `password` is theirs; UNAUTHENTICATED otherwise, after the same bcrypt work. */
  async #confirm(em: EntityManager, viewer: SignedIn, password: string): Promise<User> {
    const user = await em.findOne(User, viewer.userId);
    const matches = await this.#compare(password, user?.passwordHash ?? this.#dummyHash);
    if (!user) throw invalidToken();
    if (!matches) throw unauthenticated('Wrong password');
    return user;
  }

  /** A new session of the user; past SESSIONS_PER_USER the least recently used end (told once committed). */
  async #openSession(tx: EntityManager, userId: string, origin: SessionOrigin): Promise<{ issued: IssuedRefresh; ended: string[] }> {
    const { refreshTtlSeconds: ttlSeconds, sessionsPerUser: limit } = this.settings;
    const created = await createSession(tx, { userId, userAgent: userAgentLabel(origin.userAgent), ttlSeconds, limit });
    // Deleted since it was read: as if it had never been.
    if (!created) throw unauthenticated('Wrong email or password');
    return created;
  }

  /** Once a new session has committed: the sessions it ended are refused here at once. */
  #opened(em: EntityManager, { issued, ended }: { issued: IssuedRefresh; ended: string[] }): IssuedRefresh {
    this.gate.ended(ended);
    this.#pruneIfDue(em);
    return issued;
  }

  async #payload(user: User, issued: IssuedRefresh): Promise<AuthPayload> {
    const { token, expiresAt } = await this.tokens.issue(user.id, issued.sessionId);
    return { token, expiresAt, refreshToken: issued.refreshToken, refreshExpiresAt: issued.refreshExpiresAt, user };
  }

  async #hash(password: string): Promise<string> {
    const hash = await this.#hashes.run(() => hashPassword(password, this.bcryptRounds));
    this.onHash('hash');
    return hash;
  }

  async #compare(password: string, hash: string): Promise<boolean> {
    const matches = await this.#hashes.run(() => verifyPassword(password, hash));
    this.onHash('compare');
    return matches;
  }

  /** Expired sessions and refresh tokens go at most every PRUNE_EVERY_MS, after a session was made or renewed here. */
  #pruneIfDue(em: EntityManager): void {
    const now = Date.now();
    if (now - this.#lastPrune < PRUNE_EVERY_MS) return;
    this.#lastPrune = now;
    pruneSessions(em.fork())
      .then((pruned) => this.logger?.debug(pruned, 'pruned expired sessions'))
      .catch((error: unknown) => this.logger?.warn({ err: error }, 'pruning expired sessions failed'));
  }
}
