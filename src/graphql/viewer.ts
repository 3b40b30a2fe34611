import { unauthenticated } from './errors.js';

/** Who is asking: nobody, a user with a valid token, or someone whose token is tampered, expired or malformed. */
export type Viewer = { kind: 'anonymous' } | { kind: 'user'; userId: string; expiresAt: number } | { kind: 'invalid' };

/** What checks a token (the users feature's TokenService). */
export interface TokenVerifier {
  verified(token: string): Promise<{ userId: string; expiresAt: number } | undefined>;
}

const BEARER = /^Bearer\s+(\S+)$/i;

export async function viewerFrom(authorization: string | undefined, tokens: TokenVerifier): Promise<Viewer> {
  if (!authorization) return { kind: 'anonymous' };
  const token = BEARER.exec(authorization.trim())?.[1];
  const verified = token ? await tokens.verified(token) : undefined;
  return verified ? { kind: 'user', ...verified } : { kind: 'invalid' };
}

export const invalidToken = () => unauthenticated('The token is invalid or expired');

/** The signed-in user's id, or UNAUTHENTICATED. */
export function requireUserId({ viewer }: { viewer: Viewer }): string {
  if (viewer.kind === 'user') return viewer.userId;
  throw viewer.kind === 'invalid' ? invalidToken() : unauthenticated();
}
