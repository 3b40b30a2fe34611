import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from '../observability/logger.js';
import type { Viewer } from './viewer.js';

/** What a request's log line says of its GraphQL operation, filled in by the logging plugin. */
export interface RequestOutcome {
  operation?: string;
  errors?: string[];
}

/**
 * Long-lived services, built once at start-up. Each feature adds its own here from its index.ts (TypeScript's
 * declaration merging), so that this plumbing names no feature.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled in by the features
export interface Services {}

/** How a subscription transport follows the subscriptions it carries (the metrics). */
export interface StreamObserver {
  opened(): void;
  closed(): void;
  delivered(): void;
}

/** What a subscription transport gives each subscription it carries. */
export interface SubscriberLink {
  /** When the subscriber's token expires: the subscription then ends with UNAUTHENTICATED. */
  expiresAt: number;
  /** Aborted when the subscriber's session ends; the subscription then ends with the reason (UNAUTHENTICATED). */
  ended?: AbortSignal;
  /** Resolves when the transport can take another event (Server-Sent Events wait for the response to drain). */
  writable?: () => Promise<void>;
  /** Charges one event to the user's cost budget before it is delivered; throws RATE_LIMITED once it is spent. */
  charge?: () => Promise<unknown>;
  observer?: StreamObserver;
}

/** Built once per request: its own unit of work, its own logger. */
export interface Context {
  em: EntityManager;
  logger: Logger;
  requestId: string;
  services: Services;
  viewer: Viewer;
  /** The client's address: the socket's, or as many proxies in front say (`TRUST_PROXY`). */
  clientIp: string;
  /** The client's `User-Agent`, as sent (a new session records it). */
  userAgent?: string;
  /** Filled in by the logging plugin for the request's log line. */
  outcome: RequestOutcome;
  /** Over the subscription transports only: what the change feed needs of the subscriber. */
  subscriber?: SubscriberLink;
}

/** What a request's context is made of, by whichever transport brought the request. */
export interface RequestOrigin {
  viewer: Viewer;
  clientIp: string;
  userAgent?: string;
  requestId: string;
  /** The request's own logger; without one, a child of the process's with the request id, made on first use. */
  logger?: Logger;
  outcome?: RequestOutcome;
  subscriber?: Context['subscriber'];
}

/**
 * The one way a request's context is built, over HTTP and both subscription transports. Its unit of work (an
 * EntityManager fork) is made on first use: most subscriptions never need one, since events carry their task.
 * A class, so that a context holds no closures of its own; its state is in plain properties, since Apollo copies
 * a context onto a new object of the same prototype for each operation (`cloneObject`), which `#private` fields
 * would not survive.
 */
export class RequestContext implements Context {
  readonly viewer: Viewer;
  readonly clientIp: string;
  readonly userAgent: string | undefined;
  readonly requestId: string;
  readonly outcome: RequestOutcome;
  readonly subscriber: Context['subscriber'];
  private forked: EntityManager | undefined;
  private requestLogger: Logger | undefined;

  constructor(
    private readonly root: { orm: MikroORM; logger: Logger },
    readonly services: Services,
    origin: RequestOrigin,
  ) {
    this.viewer = origin.viewer;
    this.clientIp = origin.clientIp;
    this.userAgent = origin.userAgent;
    this.requestId = origin.requestId;
    this.outcome = origin.outcome ?? {};
    this.subscriber = origin.subscriber;
    this.requestLogger = origin.logger;
  }

  get em(): EntityManager {
    return (this.forked ??= this.root.orm.em.fork());
  }

  get logger(): Logger {
    return (this.requestLogger ??= this.root.logger.child({ requestId: this.requestId }));
  }
}
