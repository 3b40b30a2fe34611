import type { Server } from 'node:http';
import type { Request, Response, RequestHandler } from 'express';
import { subscribe, type ExecutionResult, type GraphQLError } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocket, WebSocketServer } from 'ws';
import type { Config } from '../config/config.js';
import { ErrorCode, unauthenticated } from '../graphql/errors.js';
import type { GraphQLParams } from '../guards/trusted-documents.js';
import type { Metrics } from '../observability/metrics.js';
import type { Subscriber, SubscriptionGateway } from './gateway.js';

export interface Transport {
  /** Closes every connection ("going away" for WebSockets), so that clients resume elsewhere. */
  close(): Promise<void>;
}

/** A closing handshake gets this long before the socket is cut. */
const CLOSE_WAIT_MS = 1000;
/** A Server-Sent Events response that has not drained for this long is cut; the client resumes. */
const SSE_STALL_MS = 30_000;
/** graphql-ws pings every this often; a socket that has not answered the previous ping is cut. */
const KEEP_ALIVE_MS = 12_000;

const expired = (subscriber: Subscriber) => subscriber.expiresAt <= Date.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());

type SocketExtra = { subscriber?: Subscriber };

/**
 * graphql-ws on `/graphql`, on the HTTP server Apollo answers on. The token comes in `connection_init`; without
 * a valid one the socket is closed (4403). At most SUBSCRIPTIONS_PER_USER sockets per user, like subscriptions.
 */
export function webSocketTransport(httpServer: Server, gateway: SubscriptionGateway, metrics: Metrics, config: Config): Transport {
  const wss = new WebSocketServer({ server: httpServer, path: '/graphql', maxPayload: config.bodyLimitBytes });
  const counted = metrics.transport('websocket');
  const socketsOf = new Map<string, number>();
  const server = useServer<Record<string, unknown>, SocketExtra>(
    {
      // Close reasons say nothing of internals in production (graphql-ws would read NODE_ENV, not .env).
      isProd: config.env === 'production',
      connectionInitWaitTimeout: 3000,
      onConnect: async (ctx) => {
        const { socket } = ctx.extra;
        const subscriber = await gateway.subscriber(ctx.connectionParams?.authorization);
        // Gone while its token was checked: nothing to count.
        if (!subscriber || socket.readyState !== WebSocket.OPEN) return false;
        const { userId } = subscriber;
        const open = socketsOf.get(userId) ?? 0;
        if (open >= config.subscriptionsPerUser) {
          socket.close(4429, 'Too many connections for this user');
          return false;
        }
        socketsOf.set(userId, open + 1);
        counted.connected();
        socket.once('close', () => {
          const left = (socketsOf.get(userId) ?? 1) - 1;
          if (left > 0) socketsOf.set(userId, left);
          else socketsOf.delete(userId);
          counted.disconnected();
        });
        ctx.extra.subscriber = subscriber;
        return true;
      },
      onSubscribe: async (ctx, _id, payload) => {
        const { subscriber } = ctx.extra;
        if (!subscriber || expired(subscriber)) return [unauthenticated('The token has expired')];
        return gateway.prepare(subscriber, payload as GraphQLParams, {
          clientIp: ctx.extra.request.socket.remoteAddress ?? 'unknown',
          observer: counted.feed,
        });
      },
      onError: (_ctx, _id, _payload, errors) => gateway.mask(errors),
      onNext: (_ctx, _id, _payload, _args, result) => gateway.maskResult(result),
    },
    wss,
    KEEP_ALIVE_MS,
  );
  return {
    close: async () => {
      // 1001 "Going away" to every client, then the server; a client that does not answer the close is cut.
      const disposed = server.dispose();
      await Promise.race([disposed, sleep(CLOSE_WAIT_MS)]);
      for (const socket of wss.clients) socket.terminate();
      await disposed;
    },
  };
}

/** The HTTP status of a refused subscribe request, as over `/graphql`. */
function statusOf(errors: readonly GraphQLError[]): number {
  const code = errors[0]?.extensions.code;
  if (code === ErrorCode.RATE_LIMITED) return 429;
  if (code === ErrorCode.UNAUTHENTICATED) return 401;
  return 400;
}

/** One Server-Sent Event as graphql-sse writes it. */
const event = (name: 'next' | 'complete', data?: unknown) => `event: ${name}\ndata:${data === undefined ? '' : ` ${JSON.stringify(data)}`}\n\n`;

/**
 * Writes a chunk; resolves true once the response has taken it (at once, or when it drains), false when the
 * client is gone or has not read for SSE_STALL_MS (the response is then cut; the client resumes from its cursor).
 */
function send(res: Response, chunk: string): Promise<boolean> {
  if (res.destroyed || res.writableEnded) return Promise.resolve(false);
  if (res.write(chunk)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (taken: boolean) => () => {
      clearTimeout(stall);
      res.off('drain', drained);
      res.off('close', closed);
      resolve(taken);
    };
    const drained = done(true);
    const closed = done(false);
    const stall = setTimeout(() => {
      res.destroy();
      closed();
    }, SSE_STALL_MS);
    res.on('drain', drained);
    res.on('close', closed);
  });
}

/** The GraphQL parameters of a GET (from the URL) or of a POST (its JSON body, already parsed). */
function paramsOf(req: Request): GraphQLParams | undefined {
  if (req.method === 'POST') return req.body !== null && typeof req.body === 'object' && !Array.isArray(req.body) ? (req.body as GraphQLParams) : undefined;
  const search = new URLSearchParams(req.url.slice(req.url.indexOf('?') + 1 || req.url.length));
  const params: GraphQLParams = {};
  for (const key of ['query', 'operationName', 'documentId', 'variables', 'extensions']) {
    const value = search.get(key);
    if (value === null) continue;
    if (key !== 'variables' && key !== 'extensions') params[key] = value;
    else {
      try {
        params[key] = JSON.parse(value);
      } catch {
        return undefined;
      }
    }
  }
  return params;
}

/**
 * GraphQL over Server-Sent Events on `/graphql/stream`, as graphql-sse's "distinct connections" mode speaks it
 * (its client works unchanged): one request, one operation, one stream of `next` events and a `complete`; the
 * token in the `Authorization` header. Written here rather than with graphql-sse's handler, which reads a body
 * of any size when the content type is not exactly JSON and queues events without bound for a client that does
 * not read: here the next event is taken from the subscription only once the previous one was written, so a
 * slow client fills the subscription's own bounded buffer. Its "single connection" mode (streams reserved with
 * PUT, held in memory per token) is not offered.
 */
export function serverSentEventsTransport(gateway: SubscriptionGateway, metrics: Metrics): Transport & { route: RequestHandler } {
  const counted = metrics.transport('sse');
  const open = new Set<Response>();
  let closing = false;
  const refuse = (res: Response, errors: readonly GraphQLError[]) => {
    const status = statusOf(errors);
    const retryAfter = errors[0]?.extensions.retryAfterSeconds;
    if (status === 429 && typeof retryAfter === 'number') res.set('retry-after', String(retryAfter));
    if (status === 401) res.set('www-authenticate', 'Bearer');
    res.status(status).json({ errors: gateway.mask(errors) });
  };
  const badRequest = (res: Response, status: number, message: string) =>
    res.status(status).json({ errors: [{ message, extensions: { code: 'BAD_REQUEST' } }] });

  const stream = async (req: Request, res: Response) => {
    if (req.method !== 'GET' && req.method !== 'POST') return badRequest(res.set('allow', 'GET, POST'), 405, 'Use GET or POST');
    if (!req.get('accept')?.includes('text/event-stream')) return badRequest(res, 406, 'Send Accept: text/event-stream');
    if (closing) return res.set('retry-after', '1').sendStatus(503);
    const subscriber = await gateway.subscriber(req.get('authorization'));
    if (!subscriber) return refuse(res, [unauthenticated()]);
    if (req.method === 'POST' && !req.is('application/json')) return badRequest(res, 415, 'Send the request as application/json');
    const params = paramsOf(req);
    if (!params) return badRequest(res, 400, 'The request is not GraphQL over HTTP');
    const prepared = await gateway.prepare(subscriber, params, { clientIp: req.ip ?? req.socket.remoteAddress ?? 'unknown', observer: counted.feed });
    if (Array.isArray(prepared)) return refuse(res, prepared);
    if (res.destroyed) return;
    const result = await subscribe(prepared);
    const iterator = Symbol.asyncIterator in result ? result[Symbol.asyncIterator]() : undefined;
    if (res.destroyed) return void iterator?.return?.();
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    counted.connected();
    open.add(res);
    res.once('close', () => {
      open.delete(res);
      counted.disconnected();
      void iterator?.return?.();
    });
    // A comment now (some browsers wait for a first chunk) and every 12 s (proxies close quiet streams).
    res.write(':\n\n');
    const pinger = setInterval(() => res.writableNeedDrain || res.write(':\n\n'), KEEP_ALIVE_MS);
    try {
      if (!iterator) await send(res, event('next', gateway.maskResult(result as ExecutionResult)));
      else {
        for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
          if (!(await send(res, event('next', gateway.maskResult(next.value))))) break;
        }
      }
      if (!res.writableEnded && !res.destroyed) res.end(event('complete'));
    } finally {
      clearInterval(pinger);
    }
  };

  return {
    route: (req, res, next) => {
      stream(req, res).catch((error: unknown) => (res.headersSent ? res.destroy() : next(error)));
    },
    close: async () => {
      closing = true;
      for (const res of open) res.end();
    },
  };
}
