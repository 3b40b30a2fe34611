import { createHash } from 'node:crypto';
import bcrypt from 'bcrypt';

export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 128;

/**
 * bcrypt reads only the first 72 bytes: a 128-character password would be cut. Hashing it to a fixed 44-character
 * digest first keeps every character significant; what is stored is still a bcrypt hash.
 */
function digest(password: string): string {
  return createHash('sha256').update(password.normalize('NFC')).digest('base64');
}

export function hashPassword(password: string, rounds: number): Promise<string> {
  return bcrypt.hash(digest(password), rounds);
}

export function verifyPassword(password: string, hash: string): Promise<boolean> {
  return bcrypt.compare(digest(password), hash);
}
