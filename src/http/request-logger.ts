import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { RequestHandler } from 'express';
import type { Logger } from '../observability/logger.js';
import type { RequestOutcome } from '../graphql/context.js';

/** What the GraphQL layer learns about a request, for its log line. */

declare module 'express-serve-static-core' {
  interface Locals {
    requestId: string;
    logger: Logger;
    outcome: RequestOutcome;
  }
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** Gives each request an id and a child logger, and logs one line when it ends: duration and outcome. */
export function requestLogger(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    const header = req.get('x-request-id');
    const requestId = header && REQUEST_ID.test(header) ? header : randomUUID();
    res.locals.requestId = requestId;
    res.locals.logger = logger.child({ requestId });
    res.locals.outcome = {};
    res.setHeader('x-request-id', requestId);
    const done = (aborted: boolean) => {
      const durationMs = Math.round((performance.now() - started) * 100) / 100;
      const { operation, errors } = res.locals.outcome;
      const level = res.statusCode >= 500 ? 'warn' : 'info';
      res.locals.logger[level](
        { method: req.method, path: req.originalUrl.split('?')[0], status: res.statusCode, durationMs, operation, errors, aborted },
        'request',
      );
    };
    res.once('finish', () => done(false));
    res.once('close', () => {
      if (!res.writableFinished) done(true);
    });
    next();
  };
}
