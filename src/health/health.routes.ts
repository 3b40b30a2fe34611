import { Router, type RequestHandler } from 'express';
import type { HealthService } from './health.service.js';
import { HealthStatus, type Health } from './health.types.js';

const CHECK_STATUS = { [HealthStatus.OK]: 'pass', [HealthStatus.DEGRADED]: 'warn', [HealthStatus.DOWN]: 'fail' } as const;

/** The `application/health+json` shape (draft-inadarei-api-health-check). */
export function healthJson(health: Health) {
  const time = health.checkedAt.toISOString();
  return {
    status: CHECK_STATUS[health.status],
    version: health.version,
    checks: {
      'database:responseTime': [
        {
          status: health.database.connected ? 'pass' : 'fail',
          observedValue: health.database.latencyMs,
          observedUnit: 'ms',
          ...(health.database.error ? { output: health.database.error } : {}),
          time,
        },
      ],
      'database:connections': [{ status: 'pass', observedValue: health.database.pool, time }],
      'migrations:pending': [
        {
          status: !health.database.connected ? 'fail' : health.migrations.upToDate ? 'pass' : 'warn',
          observedValue: health.migrations.pending,
          time,
        },
      ],
    },
  };
}

export function healthRoutes(health: HealthService): Router {
  const router = Router();
  router.get('/health/live', (_req, res) => {
    res.json({ status: 'pass' });
  });
  const ready: RequestHandler = async (_req, res) => {
    const report = await health.check();
    res
      .status(report.status === HealthStatus.OK ? 200 : 503)
      .type('application/health+json')
      .setHeader('Cache-Control', 'no-store')
      .send(JSON.stringify(healthJson(report)));
  };
  router.get('/health/ready', ready);
  router.get('/health', ready);
  return router;
}
