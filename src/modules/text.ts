import { badUserInput } from '../graphql/errors.js';

/**
 * Whether PostgreSQL would store `text` as given: it refuses NUL, and a lone UTF-16 surrogate reaches it as
 * U+FFFD, so a client would read back something other than what it wrote.
 */
export function isStorableText(text: string): boolean {
  return !text.includes('\u0000') && text.isWellFormed();
}

/** `text`, or BAD_USER_INPUT on `field` when PostgreSQL could not store it as given. */
export function storableText(text: string, field: string): string {
  if (!isStorableText(text)) throw badUserInput('Text must not contain NUL characters or unpaired surrogates', field);
  return text;
}
