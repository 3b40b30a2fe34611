import type { EntityManager } from '@mikro-orm/postgresql';
import type { HealthService } from '../health/health.service.js';
import type { RequestOutcome } from '../http/request-logger.js';
import type { Logger } from '../observability/logger.js';

/** Long-lived services, built once at start-up. */
export interface Services {
  health: HealthService;
}

/** Built once per request: its own unit of work, its own logger. */
export interface Context {
  em: EntityManager;
  logger: Logger;
  requestId: string;
  services: Services;
  /** Filled in by the logging plugin for the request's log line. */
  outcome: RequestOutcome;
}
