import type { ErrorRequestHandler } from 'express';
import type { Logger } from '../observability/logger.js';

/**
 * Errors raised before GraphQL sees the request (the body parser's), answered in GraphQL's JSON shape; anything
 * else is logged and answered without internals, never with Express's HTML stack page.
 */
export function httpErrors(logger: Logger): ErrorRequestHandler {
  return (error: { type?: string; status?: number; limit?: number }, _req, res, next) => {
    if (res.headersSent) return next(error);
    const answer = (status: number, message: string) =>
      res.status(status).json({ errors: [{ message, extensions: { code: 'BAD_REQUEST' } }] });
    if (error.type === 'entity.too.large') return answer(413, `The request body is over the limit of ${error.limit} bytes`);
    if (error.type === 'entity.parse.failed') return answer(400, 'The request body is not valid JSON');
    if (error.status && error.status >= 400 && error.status < 500) return answer(error.status, 'The request could not be read');
    (res.locals.logger ?? logger).error({ err: error }, 'unhandled HTTP error');
    return res.status(500).json({ errors: [{ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
  };
}
