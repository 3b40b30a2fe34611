import type { Server } from 'node:http';
import type { Response, RequestHandler } from 'express';
import type { ExecutionResult, GraphQLError } from 'graphql';
import { createHandler } from 'graphql-sse/lib/use/express';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { Config } from '../config/config.js';
import type { Context } from '../graphql/context.js';
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
      connectionInitWaitTimeout: 3000,
      onConnect: async (ctx) => {
        const subscriber = await gateway.subscriber(ctx.connectionParams?.authorization);
        if (!subscriber) return false;
        const open = socketsOf.get(subscriber.userId) ?? 0;
        if (open >= config.subscriptionsPerUser) {
          ctx.extra.socket.close(4429, 'Too many connections for this user');
          return false;
        }
        socketsOf.set(subscriber.userId, open + 1);
        ctx.extra.subscriber = subscriber;
        counted.connected();
        return true;
      },
      onSubscribe: async (ctx, _id, payload) => {
        const { subscriber } = ctx.extra;
        if (!subscriber || expired(subscriber)) return [unauthenticated('The token has expired')];
        // graphql-ws insists on a `query` string: a document sent by its hash comes with an empty one.
        const params = payload.query === '' && ('documentId' in payload || 'extensions' in payload) ? { ...payload, query: undefined } : payload;
        return gateway.prepare(subscriber, params as GraphQLParams, {
          clientIp: ctx.extra.request.socket.remoteAddress ?? 'unknown',
          observer: counted.feed,
        });
      },
      onError: (_ctx, _id, _payload, errors) => gateway.mask(errors),
      onNext: (_ctx, _id, _payload, _args, result) => gateway.maskResult(result),
      onClose: (ctx) => {
        const { subscriber } = ctx.extra;
        if (!subscriber || !ctx.acknowledged) return;
        const left = (socketsOf.get(subscriber.userId) ?? 1) - 1;
        if (left > 0) socketsOf.set(subscriber.userId, left);
        else socketsOf.delete(subscriber.userId);
        counted.disconnected();
      },
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

/** Resolves when `res` can take more (or is gone); cuts a response that has not drained for SSE_STALL_MS. */
function drained(res: Response): Promise<void> {
  if (!res.writableNeedDrain || res.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(stall);
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    const stall = setTimeout(() => {
      res.destroy();
      done();
    }, SSE_STALL_MS);
    res.on('drain', done);
    res.on('close', done);
  });
}

/** The HTTP status of a refused subscribe request, as over `/graphql`. */
function statusOf(errors: readonly GraphQLError[]): number {
  const code = errors[0]?.extensions.code;
  if (code === ErrorCode.RATE_LIMITED) return 429;
  if (code === ErrorCode.UNAUTHENTICATED) return 401;
  return 400;
}

/**
 * graphql-sse on `/graphql/stream`, in its "distinct connections" mode: one request, one event stream, one
 * operation; the token in the `Authorization` header. Its "single connection" mode (streams reserved with PUT,
 * kept in memory by token) is not offered: it would pin a client to one instance and hold state per token.
 */
export function serverSentEventsTransport(gateway: SubscriptionGateway, metrics: Metrics): Transport & { route: RequestHandler } {
  const counted = metrics.transport('sse');
  const open = new Set<Response>();
  const handler = createHandler<Context & Record<PropertyKey, unknown>>({
    // The gateway validated the document already, after the limits.
    validate: () => [],
    onSubscribe: async (req, params) => {
      const res = req.context.res;
      const refuse = (errors: readonly GraphQLError[]) => {
        const status = statusOf(errors);
        const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
        const retryAfter = errors[0]?.extensions.retryAfterSeconds;
        if (status === 429 && typeof retryAfter === 'number') headers['retry-after'] = String(retryAfter);
        if (status === 401) headers['www-authenticate'] = 'Bearer';
        return [JSON.stringify({ errors: gateway.mask(errors) }), { status, statusText: '', headers }] as const;
      };
      const subscriber = res.locals.subscriber as Subscriber | undefined;
      if (!subscriber) return refuse([unauthenticated()]);
      const prepared = await gateway.prepare(subscriber, params as GraphQLParams, {
        clientIp: req.raw.ip ?? req.raw.socket.remoteAddress ?? 'unknown',
        observer: counted.feed,
        writable: () => drained(res),
      });
      if (Array.isArray(prepared)) return refuse(prepared);
      counted.connected();
      open.add(res);
      res.once('close', () => {
        open.delete(res);
        counted.disconnected();
      });
      return prepared as typeof prepared & { contextValue: Context & Record<PropertyKey, unknown> };
    },
    // Written out as JSON: the formatted errors are what the client reads.
    onNext: (_ctx, _req, result) => gateway.maskResult(result as ExecutionResult) as ExecutionResult,
  });
  return {
    route: async (req, res, next) => {
      if (req.method !== 'GET' && req.method !== 'POST') return res.set('allow', 'GET, POST').sendStatus(405);
      if (req.get('accept') !== 'text/event-stream') {
        return res.status(406).json({ errors: [{ message: 'Accept: text/event-stream', extensions: { code: 'BAD_REQUEST' } }] });
      }
      const subscriber = await gateway.subscriber(req.get('authorization'));
      if (subscriber) res.locals.subscriber = subscriber;
      try {
        await handler(req, res);
      } catch (error) {
        next(error);
      }
    },
    close: async () => {
      for (const res of open) res.end();
    },
  };
}
