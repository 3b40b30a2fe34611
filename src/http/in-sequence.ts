import type { NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * Middlewares run one after the other as a single layer of Express's router, as they would as separate layers:
 * an error (thrown, passed to `next` or a rejected promise) goes on to the error handlers after them, and
 * `next()` from the last goes on to the layers after it. Each layer costs Express a path match, a prefix trim and
 * a few closures per request, ~0.7 KB (`npm run bench:alloc`), and `/graphql` had six. No `next('route')` here.
 */
export function inSequence(...handlers: RequestHandler[]): RequestHandler {
  return (req: Request, res: Response, done: NextFunction) => {
    let index = 0;
    const next = (error?: unknown): void => {
      if (error) return done(error);
      const handler = handlers[index++];
      if (!handler) return done();
      try {
        const result: unknown = handler(req, res, next);
        if (result instanceof Promise) result.catch((reason: unknown) => done(reason || new Error('Rejected promise')));
      } catch (thrown) {
        done(thrown);
      }
    };
    next();
  };
}
