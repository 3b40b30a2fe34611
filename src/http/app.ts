import { createServer, type Server } from 'node:http';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginInlineTraceDisabled,
  ApolloServerPluginLandingPageDisabled,
} from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import express from 'express';
import { RequestContext, type Context } from '../graphql/context.js';
import { formatError } from '../graphql/errors.js';
import { compiledExecution } from '../graphql/compiled-executor.js';
import { InflightOperations } from '../graphql/inflight.plugin.js';
import { loggingPlugin } from '../graphql/logging.plugin.js';
import { viewerFrom } from '../graphql/viewer.js';
import { healthRoutes } from '../health/health.routes.js';
import type { Metrics } from './metrics.js';
import { graphqlCors, securityHeaders } from './browser-policy.js';
import { admission } from './admission.js';
import { apolloMiddleware } from './apollo-middleware.js';
import { clientIp } from '../guards/client-ip.js';
import { httpErrors } from './http-errors.js';
import { requestLogger } from './request-logger.js';
import { SubscriptionGateway, type GatewayDeps } from '../realtime/gateway.js';
import { serverSentEventsTransport, webSocketTransport } from '../realtime/transports.js';
import { StreamsPerIp, TransportFaults } from '../realtime/stream-limits.js';

/** What the HTTP app is built from: what the subscription gateway is, and the metrics. */
export interface AppDeps extends GatewayDeps {
  metrics: Metrics;
}

export interface HttpApp {
  httpServer: Server;
  /** Stops accepting requests, lets in-flight ones finish (within the grace period). */
  stop(): Promise<void>;
}

/**
 * Express 5 with the health routes and Apollo on `/graphql`, where every request gets a fresh EntityManager fork;
 * subscriptions over WebSocket on `/graphql` and over Server-Sent Events on `/graphql/stream`.
 */
export async function createHttpApp({ config, logger, orm, schema, guards, services, metrics }: AppDeps): Promise<HttpApp> {
  const production = config.env === 'production';
  const app = express();
  const httpServer = createServer(
    {
      // Node closes a connection whose request (headers, upgrade, body) is not complete in time, checking this often.
      headersTimeout: config.requestHeadersTimeoutMs,
      requestTimeout: config.requestHeadersTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, Math.ceil(config.requestHeadersTimeoutMs / 10)),
    },
    app,
  );
  // Past it, Node closes each new connection at once.
  httpServer.maxConnections = config.maxConnections;
  const inflight = new InflightOperations();

  const apollo = new ApolloServer<Context>({
    schema,
    introspection: !production,
    // main.ts owns the signals: it drains Apollo, then closes the ORM and the embedded database, then exits 0.
    stopOnTerminationSignals: false,
    includeStacktraceInErrorResponses: config.env === 'development',
    // No "Did you mean ...?" in production: with introspection off, suggestions would give the schema away.
    hideSchemaDetailsFromClientErrors: production,
    // The parser stops at this many tokens, before a huge document costs anything more.
    parseOptions: { maxTokens: config.maxQueryTokens },
    // With trusted documents no client may register a query of its own (automatic persisted queries).
    persistedQueries: guards.trusted ? false : undefined,
    formatError: formatError(production),
    plugins: [
      // No HTTP caching here; without this, Apollo wraps every field resolver to compute cache hints.
      ApolloServerPluginCacheControlDisabled(),
      // Inline traces are for a federated subgraph, which this is not; left enabled, Apollo would still import the
      // plugin and protobuf.js at start, only for the plugin to find that out.
      ApolloServerPluginInlineTraceDisabled(),
      ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: config.shutdownGraceMs }),
      production ? ApolloServerPluginLandingPageDisabled() : ApolloServerPluginLandingPageLocalDefault({ footer: false }),
      loggingPlugin(),
      metrics.plugin(),
      inflight.plugin(),
      guards.plugin(),
      // Last: it answers in place of Apollo's execution, once every other plugin has let the operation through.
      compiledExecution(schema),
    ],
  });
  await apollo.start();
  const gateway = new SubscriptionGateway({ config, logger, orm, schema, guards, services });
  const transportDeps = {
    gateway,
    metrics,
    config,
    streams: new StreamsPerIp(config.maxStreamsPerIp),
    buffers: services.feed.buffers,
    faults: new TransportFaults(logger),
  };
  const webSockets = webSocketTransport(httpServer, transportDeps);
  const eventStreams = serverSentEventsTransport(transportDeps);

  app.disable('x-powered-by');
  // No ETag: hashing every GraphQL answer for a conditional GET nobody makes.
  app.set('etag', false);
  // Express's own view of the request behind TRUST_PROXY proxies (req.protocol, req.secure); the client's address,
  // for every transport alike, is clientIp().
  app.set('trust proxy', config.trustProxy);
  app.use(securityHeaders(config));
  app.use(requestLogger(logger));
  app.use(metrics.httpMiddleware());
  // `/graphql` before the routes a GraphQL request would be matched against in vain (the stream before `/graphql`,
  // which would match it as a prefix). Each middleware stays a layer of its own: a trace shows each one's span
  // (the admission gate's is a request's wait for a place).
  app.use('/graphql/stream', ...graphqlCors(config), express.json({ limit: config.bodyLimitBytes }), eventStreams.route);
  app.use(
    '/graphql',
    ...graphqlCors(config),
    express.json({ limit: config.bodyLimitBytes }),
    // Twice the pool: enough to keep every connection busy; the rest of a burst waits with its body only, for up
    // to a second.
    admission(2 * config.db.max, 1000),
    guards.http(),
    apolloMiddleware(apollo, async ({ req, res }) => {
      const viewer = await viewerFrom(req.get('authorization'), services.sessions);
      const { logger: requestLog, requestId, outcome } = res.locals;
      return new RequestContext({ orm, logger }, services, {
        viewer,
        clientIp: clientIp(req, config.trustProxy),
        userAgent: req.get('user-agent'),
        requestId,
        logger: requestLog,
        outcome,
      });
    }),
  );
  app.use(healthRoutes(services.health));
  app.get('/metrics', metrics.route());
  app.use(httpErrors(logger));
  return {
    httpServer,
    stop: async () => {
      // Subscribers first: they would hold the drain open, and told "going away" they resume elsewhere.
      await Promise.all([webSockets.close(), eventStreams.close()]);
      await apollo.stop();
      if (!(await inflight.idle(config.shutdownGraceMs))) {
        logger.warn({ inFlight: inflight.count, graceMs: config.shutdownGraceMs }, 'operations still running past SHUTDOWN_GRACE_MS');
      }
    },
  };
}
