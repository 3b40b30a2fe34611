import { HeaderMap, type ApolloServer, type BaseContext } from '@apollo/server';
import type { Request, RequestHandler, Response } from 'express';

/**
 * Apollo behind Express, as `@as-integrations/express5` mounts it, less two costs a profile of the task page
 * showed (~3% of the CPU per request): the legacy `url.parse` of every request's URL for its query string, and
 * Express's `res.send`, which copies each answer into a Buffer to measure it (Node measures a string itself).
 * Runs after `express.json()`, which sets `req.body`.
 */
export function apolloMiddleware<TContext extends BaseContext>(
  server: ApolloServer<TContext>,
  context: (args: { req: Request; res: Response }) => Promise<TContext>,
): RequestHandler {
  server.assertStarted('apolloMiddleware()');
  return async (req, res) => {
    const headers = new HeaderMap();
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
    }
    const response = await server.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: req.method.toUpperCase(), headers, search: searchOf(req.url), body: req.body },
      context: () => context({ req, res }),
    });
    for (const [key, value] of response.headers) res.setHeader(key, value);
    res.statusCode = response.status ?? 200;
    if (response.body.kind === 'complete') {
      res.end(response.body.string);
      return;
    }
    for await (const chunk of response.body.asyncIterator) res.write(chunk);
    res.end();
  };
}

/** The query string of a request target, with its `?` (what `url.parse(target).search` gives), or ''. */
export function searchOf(target: string): string {
  const hash = target.indexOf('#');
  const url = hash < 0 ? target : target.slice(0, hash);
  const start = url.indexOf('?');
  return start < 0 ? '' : url.slice(start);
}
