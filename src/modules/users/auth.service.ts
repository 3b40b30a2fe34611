import { randomBytes } from 'node:crypto';
import { UniqueConstraintViolationException, type EntityManager } from '@mikro-orm/postgresql';
import { inTransaction } from '../../db/transaction.js';
import { badUserInput, conflict, unauthenticated } from '../../graphql/errors.js';
import { isStorableText, storableText } from '../text.js';
import { HashGate, hashPassword, PASSWORD_MAX, PASSWORD_MIN, verifyPassword } from './password.js';
import type { TokenService } from './tokens.js';
import { User } from './user.entity.js';
import type { AuthPayload, SignUpInput } from './user.types.js';

const EMAIL = /^[^\s@]+@[^\s@]+$/;
const EMAIL_MAX = 320;
const NAME_MAX = 200;

/** Emails are trimmed and lower-cased, so that they compare case-insensitively. */
export function normalizeEmail(raw: string): string {
  const email = raw.trim().toLowerCase();
  if (email.length > EMAIL_MAX || !EMAIL.test(email) || !isStorableText(email)) throw badUserInput('Enter a valid email address', 'email');
  return email;
}

export function checkPassword(password: string): string {
  const length = [...password].length;
  if (length < PASSWORD_MIN || length > PASSWORD_MAX) {
    throw badUserInput(`The password must be ${PASSWORD_MIN} to ${PASSWORD_MAX} characters`, 'password');
  }
  return password;
}

export function normalizeName(raw: string | null | undefined): string | null {
  const name = raw?.trim() ?? '';
  storableText(name, 'name');
  if ([...name].length > NAME_MAX) throw badUserInput(`The name must be at most ${NAME_MAX} characters`, 'name');
  return name === '' ? null : name;
}

/** Accounts: sign-up, sign-in and the tokens they hand out. */
export class AuthService {
  /** Compared against when the email is unknown, so that both failures cost one bcrypt comparison. */
  readonly #dummyHash: Promise<string>;
  readonly #hashes = new HashGate();

  constructor(
    private readonly tokens: TokenService,
    private readonly bcryptRounds: number,
    /** Told of each bcrypt operation (the password_hashes_total metric). */
    private readonly onHash: (kind: 'hash' | 'compare') => void = () => undefined,
  ) {
    this.#dummyHash = hashPassword(randomBytes(16).toString('hex'), bcryptRounds);
  }

  async signUp(em: EntityManager, input: SignUpInput): Promise<AuthPayload> {
    const email = normalizeEmail(input.email);
    const password = checkPassword(input.password);
    const name = normalizeName(input.name);
    // Hash before touching the database, so no connection is held during the slow part.
    const passwordHash = await this.#hashes.run(() => hashPassword(password, this.bcryptRounds));
    this.onHash('hash');
    let user: User;
    try {
      user = await inTransaction(em, async (tx) => tx.create(User, { email, name, passwordHash }));
    } catch (error) {
      if (error instanceof UniqueConstraintViolationException) throw conflict('An account with this email already exists');
      throw error;
    }
    return { ...(await this.tokens.issue(user.id)), user };
  }

  /** A wrong email and a wrong password answer alike, after the same bcrypt work. */
  async signIn(em: EntityManager, rawEmail: string, password: string): Promise<AuthPayload> {
    const email = rawEmail.trim().toLowerCase();
    // An email that could not have signed up is not looked up (PostgreSQL refuses NUL), but costs the same work.
    const user = email.length <= EMAIL_MAX && isStorableText(email) ? await em.findOne(User, { email }) : null;
    const hash = user?.passwordHash ?? (await this.#dummyHash);
    const matches = await this.#hashes.run(() => verifyPassword(password, hash));
    this.onHash('compare');
    if (!user || !matches) throw unauthenticated('Wrong email or password');
    return { ...(await this.tokens.issue(user.id)), user };
  }
}
