import type { EntityManager } from '@mikro-orm/postgresql';
import type { HealthService } from '../health/health.service.js';
import type { AuthService } from '../modules/users/auth.service.js';
import type { TokenService } from '../modules/users/tokens.js';
import type { RequestOutcome } from '../http/request-logger.js';
import type { Logger } from '../observability/logger.js';
import type { ChangeFeed, OpenOptions } from '../realtime/change-feed.js';
import type { Viewer } from './viewer.js';

/** Long-lived services, built once at start-up. */
export interface Services {
  health: HealthService;
  auth: AuthService;
  tokens: TokenService;
  feed: ChangeFeed;
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
  /** Filled in by the logging plugin for the request's log line. */
  outcome: RequestOutcome;
  /** Over the subscription transports only: what the change feed needs of the subscriber. */
  subscriber?: Pick<OpenOptions, 'expiresAt' | 'writable' | 'observer' | 'charge'>;
}
