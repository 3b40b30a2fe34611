import type { ApolloServerPlugin } from '@apollo/server';
import type { RequestHandler } from 'express';
import type pg from 'pg';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DbErrorKind } from '../db/driver/db-errors.js';
import type { Context } from '../graphql/context.js';
import type { PoolStats } from '../health/health.types.js';
import type { TransportMetrics, TransportName } from '../realtime/transports.js';

const OPERATION_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const MAX_OPERATION_NAMES = 200;
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const ROUTES = new Set(['/graphql', '/graphql/stream', '/health', '/health/live', '/health/ready', '/metrics']);

/**
 * The Prometheus view of one server: its pool (the same numbers `health` reports), the time spent waiting
 * for a connection, database errors by kind, GraphQL operations and HTTP requests, and the process itself.
 * A registry per server, so that several servers in one process (tests) do not mix their numbers.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly #operationNames = new Set<string>();
  readonly #acquire: Histogram;
  readonly #dbErrors: Counter<'kind'>;
  readonly #passwordHashes: Counter<'kind'>;
  readonly #operations: Histogram<'operation' | 'type' | 'outcome'>;
  readonly #http: Histogram<'method' | 'route' | 'status'>;
  readonly #connections: Gauge<'transport'>;
  readonly #subscriptions: Gauge<'transport'>;
  readonly #events: Counter<'transport'>;

  constructor(poolStats: () => PoolStats) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const poolGauge = (name: string, help: string, read: (stats: PoolStats) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read(poolStats()));
        },
      });
    poolGauge('db_pool_max', 'Most connections the pool may open (DB_POOL_MAX)', (s) => s.max);
    poolGauge('db_pool_size', 'Connections open now, busy or idle', (s) => s.total);
    poolGauge('db_pool_idle', 'Open connections waiting for work', (s) => s.idle);
    poolGauge('db_pool_waiting', 'Requests waiting for a connection', (s) => s.waiting);
    this.#acquire = new Histogram({
      name: 'db_pool_acquire_seconds',
      help: 'Time spent waiting for a connection from the pool',
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.#dbErrors = new Counter({ name: 'db_errors_total', help: 'Failed database statements, by kind', labelNames: ['kind'], registers });
    this.#passwordHashes = new Counter({
      name: 'password_hashes_total',
      help: 'bcrypt work: passwords hashed (sign-up) and compared (sign-in, a known email or not)',
      labelNames: ['kind'],
      registers,
    });
    this.#operations = new Histogram({
      name: 'graphql_operation_duration_seconds',
      help: 'GraphQL operations by name, type and outcome (ok or the first error code)',
      labelNames: ['operation', 'type', 'outcome'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.#http = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP requests by method, route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    const transport = { labelNames: ['transport'] as const, registers };
    this.#connections = new Gauge({ name: 'subscription_connections', help: 'Open subscription connections, by transport', ...transport });
    this.#subscriptions = new Gauge({ name: 'subscriptions_open', help: 'Open taskChanges subscriptions, by transport', ...transport });
    this.#events = new Counter({
      name: 'subscription_events_total',
      help: 'Change events delivered to subscribers, by transport',
      ...transport,
    });
    for (const name of ['websocket', 'sse'] as const) {
      for (const metric of [this.#connections, this.#subscriptions, this.#events]) metric.inc({ transport: name }, 0);
    }
  }

  transport(transport: TransportName): TransportMetrics {
    return {
      connected: () => this.#connections.inc({ transport }),
      disconnected: () => this.#connections.dec({ transport }),
      feed: {
        opened: () => this.#subscriptions.inc({ transport }),
        closed: () => this.#subscriptions.dec({ transport }),
        delivered: () => this.#events.inc({ transport }),
      },
    };
  }

  /**
   * The change feed's health: what subscriptions and streams hold for slow readers, how many were cut for holding
   * too much, and how long the oldest transaction that delivery waits for has been open.
   */
  feed(feed: { readonly buffers: { readonly total: number; readonly cuts: number }; readonly oldestTransactionSeconds: number }): void {
    const registers = [this.registry];
    const ledger = feed.buffers;
    new Gauge({
      name: 'change_feed_oldest_transaction_seconds',
      help: 'How long the oldest running transaction, which change delivery waits for, has been open (0 while nobody subscribes)',
      registers,
      collect() {
        this.set(feed.oldestTransactionSeconds);
      },
    });
    new Gauge({
      name: 'subscription_buffered_bytes',
      help: 'Bytes held for subscribers that have not read them yet',
      registers,
      collect() {
        this.set(ledger.total);
      },
    });
    new Gauge({
      name: 'subscription_buffer_cuts',
      help: 'Subscriptions and streams cut since start because the process held SUBSCRIPTION_BUFFER_TOTAL_BYTES',
      registers,
      collect() {
        this.set(ledger.cuts);
      },
    });
  }

  dbError(kind: DbErrorKind): void {
    this.#dbErrors.inc({ kind });
  }

  passwordHash(kind: 'hash' | 'compare'): void {
    this.#passwordHashes.inc({ kind });
  }

  /** Times every `pool.connect()`: how long requests wait for a connection. */
  instrumentPool(pool: pg.Pool): void {
    const connect = pool.connect.bind(pool) as (...args: unknown[]) => unknown;
    const timed = async () => {
      const stop = this.#acquire.startTimer();
      try {
        return await (connect() as Promise<pg.PoolClient>);
      } finally {
        stop();
      }
    };
    // The ORM uses the promise form; the callback form is passed through as it is.
    pool.connect = ((...args: unknown[]) => (args.length > 0 ? connect(...args) : timed())) as typeof pool.connect;
  }

  plugin(): ApolloServerPlugin<Context> {
    return {
      requestDidStart: async () => {
        const stop = this.#operations.startTimer();
        return {
          willSendResponse: async ({ contextValue, operation, operationName }) => {
            stop({
              operation: this.#operationLabel(operationName),
              type: operation?.operation ?? 'unknown',
              outcome: contextValue.outcome.errors?.[0] ?? 'ok',
            });
          },
        };
      },
    };
  }

  httpMiddleware(): RequestHandler {
    return (req, res, next) => {
      const stop = this.#http.startTimer();
      res.once('finish', () => {
        const route = req.originalUrl.split('?')[0]!;
        stop({ method: req.method, route: ROUTES.has(route) ? route : 'other', status: String(res.statusCode) });
      });
      next();
    };
  }

  route(): RequestHandler {
    return async (_req, res) => {
      res.type(this.registry.contentType).send(await this.registry.metrics());
    };
  }

  /** Operation names come from clients: only well-formed ones, and not unboundedly many. */
  #operationLabel(name: string | null | undefined): string {
    if (!name) return '(anonymous)';
    if (!OPERATION_NAME.test(name)) return '(invalid)';
    if (!this.#operationNames.has(name)) {
      if (this.#operationNames.size >= MAX_OPERATION_NAMES) return '(other)';
      this.#operationNames.add(name);
    }
    return name;
  }
}
