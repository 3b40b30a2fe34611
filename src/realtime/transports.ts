import type { IncomingMessage, Server } from 'node:http';
import type { Request, Response, RequestHandler } from 'express';
import { subscribe, type ExecutionResult, type GraphQLError } from 'graphql';
import { CloseCode, handleProtocols, makeServer, MessageType } from 'graphql-ws';
import { WebSocket, WebSocketServer } from 'ws';
import type { Config } from '../config/config.js';
import { databaseUnavailable, ErrorCode, rateLimited, unauthenticated } from '../graphql/errors.js';
import type { GraphQLParams } from '../guards/trusted-documents.js';
import type { StreamObserver } from '../graphql/context.js';
import { clientIp } from '../guards/client-ip.js';
import type { BufferLedger, Holder } from '../modules/tasks/index.js';
import type { Subscriber, SubscriptionGateway } from './gateway.js';
import type { StreamsPerIp, TransportFaults } from './stream-limits.js';

export interface Transport {
  /** Closes every connection ("going away" for WebSockets), so that clients resume elsewhere. */
  close(): Promise<void>;
}

export type TransportName = 'websocket' | 'sse';

/** What a subscription transport reports: its connections, and through the feed its subscriptions and events. */
export interface TransportMetrics {
  connected(): void;
  disconnected(): void;
  feed: StreamObserver;
}

/** A closing handshake gets this long before the socket is cut. */
const CLOSE_WAIT_MS = 1000;
/** A Server-Sent Events response that has not drained for this long is cut; the client resumes. */
const SSE_STALL_MS = 30_000;
/** Sockets are pinged this often; one that has not answered the previous ping is cut (it is gone, or not reading). */
const KEEP_ALIVE_MS = 12_000;

const expired = (subscriber: Subscriber) => subscriber.expiresAt <= Date.now() || subscriber.session.signal.aborted;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref());

type SocketExtra = { socket: WebSocket; request: IncomingMessage; subscriber?: Subscriber };

/** What every transport shares: the gateway, its limits and buffers, and where its faults are logged. */
export interface TransportDeps {
  gateway: SubscriptionGateway;
  metrics: { transport(name: TransportName): TransportMetrics };
  config: Config;
  streams: StreamsPerIp;
  buffers: BufferLedger;
  faults: TransportFaults;
}

/** After its token expires, a socket gets this long to deliver its subscriptions' UNAUTHENTICATED, then closes. */
const EXPIRED_CLOSE_DELAY_MS = 100;
const TOO_MANY_STREAMS = 'Too many streams from this address';

/**
 * graphql-ws on `/graphql`, on the HTTP server Apollo answers on, wired to `ws` here rather than by graphql-ws's
 * own `useServer`, which prints socket errors to stderr (a client could fill it) and knows nothing of our limits.
 * The token comes in `connection_init`; without a valid one the socket is closed (4403), and so is a socket whose
 * token expires. At most SUBSCRIPTIONS_PER_USER sockets per user, like subscriptions, and MAX_STREAMS_PER_IP
 * streams per address (refused with HTTP 429 before the upgrade). graphql-ws waits for each event to be written
 * before it takes the next: what a socket holds unwritten counts against SUBSCRIPTION_BUFFER_TOTAL_BYTES.
 */
export function webSocketTransport(httpServer: Server, { gateway, metrics, config, streams, buffers, faults }: TransportDeps): Transport {
  const production = config.env === 'production';
  const wss = new WebSocketServer({
    server: httpServer,
    path: '/graphql',
    maxPayload: config.bodyLimitBytes,
    handleProtocols,
    verifyClient: ({ req }, verified) =>
      streams.hasRoom(clientIp(req, config.trustProxy)) ? verified(true) : verified(false, 429, TOO_MANY_STREAMS, { 'retry-after': '5' }),
  });
  const counted = metrics.transport('websocket');
  const socketsOf = new Map<string, number>();
  const acknowledged = new WeakSet<WebSocket>();
  const server = makeServer<Record<string, unknown>, SocketExtra>({
    connectionInitWaitTimeout: 3000,
    onConnect: async (ctx) => {
      const { socket } = ctx.extra;
      const subscriber = await gateway.subscriber(ctx.connectionParams?.authorization);
      // Gone while its token was checked: nothing to count.
      if (socket.readyState !== WebSocket.OPEN) return false;
      // The session cannot be checked now: "try again later", which clients retry.
      if (subscriber === 'unavailable') {
        socket.close(1013, 'The database cannot be reached right now; try again');
        return false;
      }
      if (!subscriber) return false;
      const { userId } = subscriber;
      const open = socketsOf.get(userId) ?? 0;
      if (open >= config.subscriptionsPerUser) {
        socket.close(4429, 'Too many connections for this user');
        return false;
      }
      socketsOf.set(userId, open + 1);
      counted.connected();
      // setTimeout's longest delay is under 25 days: a later expiry re-arms.
      const armExpiry = (): NodeJS.Timeout =>
        setTimeout(
          () => (Date.now() >= subscriber.expiresAt ? socket.close(4403, 'The token has expired') : (expiry = armExpiry())),
          Math.min(Math.max(0, subscriber.expiresAt - Date.now()) + EXPIRED_CLOSE_DELAY_MS, 2 ** 31 - 1),
        );
      let expiry = armExpiry();
      // Its session ended: its subscriptions end with UNAUTHENTICATED, then the socket closes, as when it expires.
      const unfollow = gateway.follow(subscriber, () => {
        clearTimeout(expiry);
        expiry = setTimeout(() => socket.close(4403, 'The session has ended'), EXPIRED_CLOSE_DELAY_MS);
      });
      socket.once('close', () => {
        clearTimeout(expiry);
        unfollow();
        const left = (socketsOf.get(userId) ?? 1) - 1;
        if (left > 0) socketsOf.set(userId, left);
        else socketsOf.delete(userId);
        counted.disconnected();
      });
      ctx.extra.subscriber = subscriber;
      acknowledged.add(socket);
      return true;
    },
    onSubscribe: async (ctx, _id, payload) => {
      const { subscriber } = ctx.extra;
      if (!subscriber || expired(subscriber)) return [unauthenticated('The token has expired or its session has ended')];
      return gateway.prepare(subscriber, payload as GraphQLParams, {
        clientIp: clientIp(ctx.extra.request, config.trustProxy),
        observer: counted.feed,
      });
    },
    onError: (_ctx, _id, _payload, errors) => gateway.mask(errors),
    onNext: (_ctx, _id, _payload, _args, result) => gateway.maskResult(result),
  });

  wss.on('error', (error) => faults.report('server', 'websocket', error, 'the WebSocket server failed'));
  wss.on('connection', (socket, request) => {
    // A protocol violation (an oversized or malformed frame) or a network error: ws closes the socket after it.
    socket.on('error', (error) => faults.report('client', 'websocket', error, 'WebSocket connection failed'));
    // Taken at once after verifyClient looked (the upgrade completes in the same turn); checked again all the same.
    const leave = streams.take(clientIp(request, config.trustProxy));
    if (!leave) return socket.close(4429, TOO_MANY_STREAMS);
    const holder: Holder = { cut: () => socket.terminate() };
    let alive = true;
    socket.on('pong', () => (alive = true));
    const pinger = setInterval(() => {
      // No answer to the previous ping: the client is gone, or is not reading.
      if (!alive) return socket.terminate();
      alive = false;
      socket.ping();
    }, KEEP_ALIVE_MS);
    const closed = server.opened(
      {
        protocol: socket.protocol,
        // Resolves once the socket has taken the message, so graphql-ws takes the next event only then; a socket
        // that failed resolves too (its subscriptions end as it closes).
        send: (data) =>
          new Promise<void>((resolve) => {
            if (socket.readyState !== WebSocket.OPEN) return resolve();
            const bytes = Buffer.byteLength(data);
            buffers.hold(holder, bytes);
            socket.send(data, () => {
              buffers.release(holder, bytes);
              resolve();
            });
          }),
        close: (code, reason) => socket.close(code, reason),
        // graphql-ws answers every ping with its payload: only for a signed-in client that reads what it is sent,
        // so that nobody can pile up answers in memory by not reading them.
        onPing: async (payload) => {
          if (!acknowledged.has(socket) || socket.bufferedAmount > 0 || socket.readyState !== WebSocket.OPEN) return;
          socket.send(JSON.stringify(payload === undefined ? { type: MessageType.Pong } : { type: MessageType.Pong, payload }));
        },
        onMessage: (handle) =>
          socket.on('message', async (data) => {
            try {
              await handle(String(data));
            } catch (error) {
              // graphql-ws throws on a message type a client must not send (next, error, connection_ack).
              if (error instanceof Error && error.message.startsWith('Unexpected message of type')) {
                faults.report('client', 'websocket', error, 'WebSocket client sent an unexpected message');
                return socket.close(CloseCode.BadRequest, 'Unexpected message');
              }
              faults.report('server', 'websocket', error, 'handling a WebSocket message failed');
              socket.close(CloseCode.InternalServerError, production ? 'Internal server error' : 'Internal server error: see the log');
            }
          }),
      },
      { socket, request },
    );
    socket.once('close', (code, reason) => {
      clearInterval(pinger);
      leave();
      buffers.forget(holder);
      void closed(code, String(reason));
    });
  });
  return {
    close: async () => {
      // 1001 "Going away" to every client, then the server; a client that does not answer the close is cut.
      for (const socket of wss.clients) socket.close(1001, 'Going away');
      const disposed = new Promise<void>((resolve) => wss.close(() => resolve()));
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
  if (code === ErrorCode.DATABASE_UNAVAILABLE) return 503;
  return 400;
}

/** One Server-Sent Event as graphql-sse writes it. */
const event = (name: 'next' | 'complete', data?: unknown) =>
  `event: ${name}\ndata:${data === undefined ? '' : ` ${JSON.stringify(data)}`}\n\n`;

/**
 * Writes a chunk; resolves true once the response has taken it (at once, or when it drains), false when the
 * client is gone or has not read for SSE_STALL_MS (the response is then cut; the client resumes from its cursor).
 */
function send(res: Response, chunk: string, buffers: BufferLedger, holder: Holder): Promise<boolean> {
  if (res.destroyed || res.writableEnded) return Promise.resolve(false);
  if (res.write(chunk)) return Promise.resolve(true);
  // Written, but waiting in the response until the client reads: held, for the process's bound.
  const bytes = Buffer.byteLength(chunk);
  buffers.hold(holder, bytes);
  return new Promise((resolve) => {
    const done = (taken: boolean) => () => {
      buffers.release(holder, bytes);
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
  if (req.method === 'POST')
    return req.body !== null && typeof req.body === 'object' && !Array.isArray(req.body) ? (req.body as GraphQLParams) : undefined;
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
export function serverSentEventsTransport({
  gateway,
  metrics,
  config,
  streams,
  buffers,
}: TransportDeps): Transport & { route: RequestHandler } {
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
    if (subscriber === 'unavailable') return refuse(res.set('retry-after', '1'), [databaseUnavailable()]);
    if (!subscriber) return refuse(res, [unauthenticated()]);
    if (req.method === 'POST' && !req.is('application/json')) return badRequest(res, 415, 'Send the request as application/json');
    const params = paramsOf(req);
    if (!params) return badRequest(res, 400, 'The request is not GraphQL over HTTP');
    const ip = clientIp(req, config.trustProxy);
    if (!streams.hasRoom(ip)) return refuse(res, [rateLimited(TOO_MANY_STREAMS, 5)]);
    const prepared = await gateway.prepare(subscriber, params, { clientIp: ip, observer: counted.feed });
    if (Array.isArray(prepared)) return refuse(res, prepared);
    if (res.destroyed) return;
    const result = await subscribe(prepared);
    const iterator = Symbol.asyncIterator in result ? result[Symbol.asyncIterator]() : undefined;
    if (res.destroyed) return void iterator?.return?.();
    // Refused at a limit before it started (the subscriptions per user): a 429, as over /graphql.
    const refusal = iterator ? undefined : (result as ExecutionResult).errors;
    if (refusal?.[0]?.extensions.code === ErrorCode.RATE_LIMITED) return refuse(res, refusal);
    const leave = streams.take(ip);
    if (!leave) {
      void iterator?.return?.();
      return refuse(res, [rateLimited(TOO_MANY_STREAMS, 5)]);
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    counted.connected();
    open.add(res);
    const holder: Holder = { cut: () => res.destroy() };
    // Its session ended: the subscription ends with UNAUTHENTICATED (the stream then completes).
    const unfollow = gateway.follow(subscriber);
    res.once('close', () => {
      unfollow();
      open.delete(res);
      leave();
      buffers.forget(holder);
      counted.disconnected();
      void iterator?.return?.();
    });
    // A comment now (some browsers wait for a first chunk) and every 12 s (proxies close quiet streams).
    res.write(':\n\n');
    const pinger = setInterval(() => res.writableNeedDrain || res.write(':\n\n'), KEEP_ALIVE_MS);
    try {
      if (!iterator) await send(res, event('next', gateway.maskResult(result as ExecutionResult)), buffers, holder);
      else {
        for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
          if (!(await send(res, event('next', gateway.maskResult(next.value)), buffers, holder))) break;
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
