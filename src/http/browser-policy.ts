import type { IncomingMessage, ServerResponse } from 'node:http';
import cors from 'cors';
import type { RequestHandler } from 'express';
import helmet from 'helmet';
import type { Config } from '../config/config.js';

const LOCAL_ORIGIN = /^http:\/\/(localhost|127\.0\.0\.1)(:\d{1,5})?$/;

/** Headers a browser client may send and read: Apollo's CSRF-prevention headers, and the rate-limit answers. */
const ALLOWED_HEADERS = ['content-type', 'authorization', 'apollo-require-preflight', 'x-apollo-operation-name'];
const EXPOSED_HEADERS = ['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'Retry-After'];

function isAllowedOrigin(origin: string, allowed: Config['corsOrigins']): boolean {
  return allowed === 'local' ? LOCAL_ORIGIN.test(origin) : allowed.includes(origin);
}

/**
 * CORS for the GraphQL routes: listed origins get their preflight answered; any other origin gets no CORS
 * header, so the browser refuses the call. No cookies are involved (tokens travel in `authorization`), so
 * credentials stay off; CSRF prevention stays on in Apollo.
 */
export function graphqlCors(config: Config): RequestHandler[] {
  const policy = cors({
    origin: (origin, callback) => callback(null, origin !== undefined && isAllowedOrigin(origin, config.corsOrigins)),
    methods: ['GET', 'POST', 'OPTIONS'],
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 600,
  });
  // A preflight from an origin not listed ends here, without CORS headers: the browser refuses the call.
  const endPreflight: RequestHandler = (req, res, next) => (req.method === 'OPTIONS' ? res.sendStatus(204) : next());
  return [policy, endPreflight];
}

/**
 * Security headers on every response (helmet). Outside production the content security policy is left off,
 * so that Apollo Sandbox can load on `/graphql`; in production there is no landing page.
 *
 * Helmet's answer depends only on this configuration, never on the request, so it is taken once, at start-up,
 * and replayed: one loop of `setHeader` per response rather than helmet's chain of a dozen middlewares.
 */
export function securityHeaders(config: Config): RequestHandler {
  const production = config.env === 'production';
  // HSTS on a development server would pin every localhost port to HTTPS in the browser for a year.
  const policy = helmet({ contentSecurityPolicy: production, strictTransportSecurity: production });
  const headers: [string, string][] = [];
  const removed: string[] = [];
  const recorder = {
    setHeader: (name: string, value: string) => headers.push([name, value]),
    removeHeader: (name: string) => removed.push(name),
  };
  let done = false;
  policy({} as IncomingMessage, recorder as unknown as ServerResponse, () => (done = true));
  if (!done) throw new Error('helmet did not answer synchronously: its headers cannot be taken once');
  return (_req, res, next) => {
    for (const [name, value] of headers) res.setHeader(name, value);
    for (const name of removed) res.removeHeader(name);
    next();
  };
}
