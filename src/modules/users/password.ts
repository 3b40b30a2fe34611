import { createHash, randomBytes } from 'node:crypto';
import { rateLimited } from '../../graphql/errors.js';

export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 128;

/**
 * bcrypt reads only the first 72 bytes: a 128-character password would be cut. Hashing it to a fixed 44-character
 * digest first keeps every character significant; what is stored is still a bcrypt hash.
 */
function digest(password: string): string {
  return createHash('sha256').update(password.normalize('NFC')).digest('base64');
}

let bcrypt: Promise<typeof import('bcrypt')> | undefined;
/** bcrypt, a native addon, is loaded by the first sign-up or sign-in rather than by the start. */
const loadBcrypt = () => (bcrypt ??= import('bcrypt').then((module) => module.default));

export async function hashPassword(password: string, rounds: number): Promise<string> {
  return (await loadBcrypt()).hash(digest(password), rounds);
}

export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  return (await loadBcrypt()).compare(digest(password), hash);
}

/** The digits of bcrypt's base64, in its order. */
const BCRYPT_BASE64 = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * A bcrypt hash of cost `rounds` that no password matches, made without hashing: a random salt and a random digest,
 * written as bcrypt writes them. Comparing a password with it costs what comparing with a stored hash of that cost
 * does: bcrypt checks the salt's form, hashes the password with it, then compares. An unknown email is compared
 * with one, so that its failure takes as long as a wrong password's, and the start computes nothing for it.
 */
export function unmatchableHash(rounds: number): string {
  let salted = '';
  for (const byte of randomBytes(53)) salted += BCRYPT_BASE64[byte & 63];
  return `$2b$${String(rounds).padStart(2, '0')}$${salted}`;
}

/**
 * Bounds password hashing: bcrypt runs on libuv's thread pool (four threads, shared with jose's HMAC, DNS and
 * file work), so at most `concurrency` hashes run at once, at most `queue` more wait, each for at most `waitMs`.
 * Past that the caller gets RATE_LIMITED at once, and a flood of sign-ins cannot starve the process.
 */
export class HashGate {
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(
    private readonly concurrency = 2,
    private readonly queue = 32,
    private readonly waitMs = 5000,
  ) {}

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#running >= this.concurrency) await this.#wait();
    this.#running += 1;
    try {
      return await work();
    } finally {
      this.#running -= 1;
      this.#waiting.shift()?.();
    }
  }

  #wait(): Promise<void> {
    const busy = () => rateLimited('Too many sign-ins and sign-ups at once; try again shortly', 1);
    if (this.#waiting.length >= this.queue) return Promise.reject(busy());
    return new Promise((resolve, reject) => {
      const turn = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiting.splice(this.#waiting.indexOf(turn), 1);
        reject(busy());
      }, this.waitMs);
      this.#waiting.push(turn);
    });
  }
}
