import { setTimeout as sleep } from 'node:timers/promises';
import { SignJWT } from 'jose';
import { newRefreshToken, refreshHashOf, TokenService } from '../../src/modules/users/tokens.js';
import { createLogger } from '../../src/observability/logger.js';

const USER = '33333333-3333-4333-8333-333333333333';
const SESSION = '44444444-4444-4444-8444-444444444444';
const SECRET = 'token-test-secret-that-is-long-enough!!';
const tokens = (ttl: number, secret = SECRET) =>
  new TokenService({ env: 'test', jwtSecret: secret, jwtTtlSeconds: ttl }, createLogger({ env: 'test', logLevel: 'silent' }));

describe('access tokens', () => {
  it('carry the user and the session, and expire, even once verified and remembered', async () => {
    // Lifetimes count from the whole second of issue: with 2 s, at least one second is left to verify in.
    const service = tokens(2);
    const { token, expiresAt } = await service.issue(USER, SESSION);
    expect(expiresAt.getTime() - Date.now()).toBeLessThanOrEqual(2000);
    expect(await service.verified(token)).toEqual({ userId: USER, sessionId: SESSION, expiresAt: expiresAt.getTime() });
    expect((await service.verified(token))?.sessionId).toBe(SESSION);
    await sleep(Math.max(0, expiresAt.getTime() - Date.now()) + 50);
    expect(await service.verified(token)).toBeUndefined();
  });

  it('are refused by a service with another key', async () => {
    const { token } = await tokens(60).issue(USER, SESSION);
    expect(await tokens(60, 'another-secret-that-is-long-enough-too!!').verified(token)).toBeUndefined();
    expect(await tokens(60).verified(`${token}x`)).toBeUndefined();
  });

  it('are refused without a session (tokens signed before sessions existed)', async () => {
    const old = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(USER)
      .setIssuer('todo-graphql-server')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(SECRET));
    expect(await tokens(60).verified(old)).toBeUndefined();
  });
});

describe('refresh tokens', () => {
  it('are 32 random bytes, stored only as their SHA-256 hash', () => {
    const { token, hash } = newRefreshToken();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(hash).toHaveLength(32);
    expect(refreshHashOf(token)).toEqual(hash);
    expect(newRefreshToken().token).not.toBe(token);
  });

  it('are not looked up when they cannot be one', () => {
    for (const bad of ['', 'x', `${newRefreshToken().token}=`, 'a'.repeat(44), `${'a'.repeat(42)}!`, 'a'.repeat(1_000_000)]) {
      expect(refreshHashOf(bad)).toBeUndefined();
    }
  });
});
