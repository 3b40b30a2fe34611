import { clientIp } from '../../src/guards/client-ip.js';

const request = (socket: string, forwarded?: string | string[]) => ({
  socket: { remoteAddress: socket },
  headers: forwarded === undefined ? {} : { 'x-forwarded-for': forwarded },
});

describe('the client’s address', () => {
  it('is the socket’s when no proxy is trusted, whatever X-Forwarded-For says', () => {
    expect(clientIp(request('10.0.0.1', '203.0.113.9') as never, 0)).toBe('10.0.0.1');
  });

  it('is the entry TRUST_PROXY hops back, as Express derives req.ip, never one the client wrote before it', () => {
    expect(clientIp(request('10.0.0.1', '198.51.100.7, 203.0.113.1') as never, 1)).toBe('203.0.113.1');
    expect(clientIp(request('10.0.0.1', '198.51.100.7, 203.0.113.1') as never, 2)).toBe('198.51.100.7');
    expect(clientIp(request('10.0.0.1', ['198.51.100.7', '203.0.113.1']) as never, 1)).toBe('203.0.113.1');
  });

  it('is the farthest hop there is when fewer proxies answered than are trusted', () => {
    expect(clientIp(request('10.0.0.1', '203.0.113.1') as never, 3)).toBe('203.0.113.1');
    expect(clientIp(request('10.0.0.1') as never, 2)).toBe('10.0.0.1');
  });
});
