import { databaseUnavailable, unauthenticated } from './errors.js';

/**
 * Who is asking: nobody; a user with a valid token of a live session; someone whose token is tampered, expired,
 * malformed or of a session that has ended; or someone whose session could not be checked (the database is away).
 */
export type Viewer =
  | { kind: 'anonymous' }
  | { kind: 'user'; userId: string; sessionId: string; expiresAt: number }
  | { kind: 'invalid' }
  | { kind: 'unavailable' };

/** What a valid access token of a live session says. */
export interface AccessClaims {
  userId: string;
  sessionId: string;
  /** Epoch milliseconds. */
  expiresAt: number;
}

/** What checks a token and its session (the users feature's SessionGate). */
export interface TokenVerifier {
  /** The claims of a valid token of a live session; undefined otherwise; 'unavailable' when it cannot be told. */
  verified(token: string): Promise<AccessClaims | 'unavailable' | undefined>;
}

const BEARER = /^Bearer\s+(\S+)$/i;

export async function viewerFrom(authorization: string | undefined, tokens: TokenVerifier): Promise<Viewer> {
  if (!authorization) return { kind: 'anonymous' };
  const token = BEARER.exec(authorization.trim())?.[1];
  const verified = token ? await tokens.verified(token) : undefined;
  if (verified === 'unavailable') return { kind: 'unavailable' };
  return verified ? { kind: 'user', ...verified } : { kind: 'invalid' };
}

export const invalidToken = () => unauthenticated('The token is invalid or expired, or its session has ended');

/** The signed-in viewer, or UNAUTHENTICATED (DATABASE_UNAVAILABLE when the session could not be checked). */
export function requireUser({ viewer }: { viewer: Viewer }): Extract<Viewer, { kind: 'user' }> {
  if (viewer.kind === 'user') return viewer;
  if (viewer.kind === 'unavailable') throw databaseUnavailable();
  throw viewer.kind === 'invalid' ? invalidToken() : unauthenticated();
}

/** The signed-in user's id, or UNAUTHENTICATED. */
export function requireUserId(context: { viewer: Viewer }): string {
  return requireUser(context).userId;
}
