import type { AddressInfo } from 'node:net';
import express from 'express';
import helmet from 'helmet';
import type { Config } from '../../src/config/config.js';
import { securityHeaders } from '../../src/http/browser-policy.js';

/** The headers an app answers with, over a real socket, without the ones that change per response. */
async function headersOf(app: express.Express): Promise<Record<string, string>> {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    await res.text();
    const headers = Object.fromEntries(res.headers);
    for (const name of ['date', 'connection', 'keep-alive', 'content-length', 'etag']) delete headers[name];
    return headers;
  } finally {
    server.close();
  }
}

const appWith = (middleware: express.RequestHandler) =>
  express()
    .use(middleware)
    .get('/', (_req, res) => void res.send('ok'));

describe('security headers', () => {
  it.each(['production', 'development'] as const)('are exactly helmet’s own in %s', async (env) => {
    const production = env === 'production';
    const expected = await headersOf(appWith(helmet({ contentSecurityPolicy: production, strictTransportSecurity: production })));
    expect(await headersOf(appWith(securityHeaders({ env } as Config)))).toEqual(expected);
    expect(expected['x-powered-by']).toBeUndefined();
    expect(expected['x-content-type-options']).toBe('nosniff');
    if (production) expect(expected['content-security-policy']).toContain("default-src 'self'");
  });
});
