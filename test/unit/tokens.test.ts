import { setTimeout as sleep } from 'node:timers/promises';
import { TokenService } from '../../src/modules/users/tokens.js';
import { createLogger } from '../../src/observability/logger.js';

const USER = '33333333-3333-4333-8333-333333333333';
const tokens = (ttl: number, secret = 'token-test-secret-that-is-long-enough!!') =>
  new TokenService({ env: 'test', jwtSecret: secret, jwtTtlSeconds: ttl }, createLogger({ env: 'test', logLevel: 'silent' }));

describe('tokens', () => {
  it('carry the user id and expire, even once verified and remembered', async () => {
    // Lifetimes count from the whole second of issue: with 2 s, at least one second is left to verify in.
    const service = tokens(2);
    const { token, expiresAt } = await service.issue(USER);
    expect(expiresAt.getTime() - Date.now()).toBeLessThanOrEqual(2000);
    expect(await service.verify(token)).toBe(USER);
    expect(await service.verify(token)).toBe(USER);
    await sleep(Math.max(0, expiresAt.getTime() - Date.now()) + 50);
    expect(await service.verify(token)).toBeUndefined();
  });

  it('are refused by a service with another key', async () => {
    const { token } = await tokens(60).issue(USER);
    expect(await tokens(60, 'another-secret-that-is-long-enough-too!!').verify(token)).toBeUndefined();
    expect(await tokens(60).verify(`${token}x`)).toBeUndefined();
  });
});
