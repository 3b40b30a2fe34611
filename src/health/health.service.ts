import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { APP_VERSION } from '../config/app-version.js';
import { describeDatabaseError } from '../db/connect.js';
import { redactText } from '../observability/logger.js';
import { HealthStatus, type Health, type PoolStats } from './health.types.js';
import { probePoolLike } from './probe-pool.js';

interface Probe {
  latencyMs: number;
  serverVersion: string;
  executed: string[];
}

export interface HealthOptions {
  /**
   * The application's live `pg` pool; undefined until the ORM has connected. Its numbers are reported; the probe
   * itself runs on a connection of its own with the same settings (see probe-pool.ts).
   */
  pool: () => pg.Pool | undefined;
  poolMax: number;
  /** Migrations the code ships, oldest first. */
  shipped: string[];
  /** The whole check answers within this budget, whatever the database does. */
  budgetMs?: number;
}

class ProbeTimeout extends Error {}

/**
 * Reports the database, the pool and the migrations truthfully and on time. The probe is read-only (MikroORM's
 * `getPending()` hides database errors and `getExecuted()` creates a table) and runs on a connection of its own,
 * opened with the application pool's settings: a pool saturated by slow queries or a lock shows in
 * `pool.waiting`, not as a database that does not answer. Only one probe runs at a time: callers during a hang
 * share it rather than piling connections onto a stuck server. `close()` ends that connection.
 */
export class HealthService {
  readonly #startedAt = performance.now();
  readonly #budgetMs: number;
  #inflight: Promise<Probe> | undefined;
  #probePool: pg.Pool | undefined;
  #closed = false;

  constructor(private readonly options: HealthOptions) {
    this.#budgetMs = options.budgetMs ?? 1500;
  }

  poolStats(): PoolStats {
    const pool = this.options.pool();
    return {
      max: this.options.poolMax,
      total: pool?.totalCount ?? 0,
      idle: pool?.idleCount ?? 0,
      waiting: pool?.waitingCount ?? 0,
    };
  }

  async check(): Promise<Health> {
    let probe: Probe | undefined;
    let error: string | null = null;
    try {
      probe = await this.#probeWithin(this.#budgetMs);
    } catch (err) {
      error = err instanceof ProbeTimeout ? `no answer within ${this.#budgetMs} ms` : redactText(describeDatabaseError(err));
    }
    const executed = new Set(probe?.executed ?? []);
    const pending = probe ? this.options.shipped.filter((name) => !executed.has(name)) : [];
    const status = !probe ? HealthStatus.DOWN : pending.length > 0 ? HealthStatus.DEGRADED : HealthStatus.OK;
    return {
      status,
      version: APP_VERSION,
      uptimeSeconds: Math.round((performance.now() - this.#startedAt) / 10) / 100,
      checkedAt: new Date(),
      database: {
        connected: probe !== undefined,
        latencyMs: probe ? Math.round(probe.latencyMs * 100) / 100 : null,
        serverVersion: probe?.serverVersion ?? null,
        error,
        pool: this.poolStats(),
      },
      migrations: {
        upToDate: probe !== undefined && pending.length === 0,
        applied: probe?.executed.length ?? 0,
        pending,
        latest: probe?.executed.at(-1) ?? null,
      },
    };
  }

  async #probeWithin(budgetMs: number): Promise<Probe> {
    this.#inflight ??= this.#probe(budgetMs).finally(() => (this.#inflight = undefined));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ProbeTimeout()), budgetMs);
    });
    try {
      return await Promise.race([this.#inflight, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Opens the probe's connection ahead of the first check, so that the first readiness probe after a start costs
   * its two queries, not a connection too. A failure is left for that check to meet and report.
   */
  async warm(): Promise<void> {
    try {
      (await this.#ownPool().connect()).release();
    } catch {
      // reported by the next check
    }
  }

  /** Ends the probe's connection; later checks report DOWN. */
  async close(): Promise<void> {
    this.#closed = true;
    const pool = this.#probePool;
    this.#probePool = undefined;
    if (pool && !pool.ending) await pool.end();
  }

  #ownPool(): pg.Pool {
    if (this.#closed) throw new Error('health checks stopped');
    if (!this.#probePool) {
      const app = this.options.pool();
      if (!app) throw new Error('not connected');
      this.#probePool = probePoolLike(app);
    }
    return this.#probePool;
  }

  async #probe(queryTimeoutMs: number): Promise<Probe> {
    const client = await this.#ownPool().connect();
    let failure: Error | undefined;
    try {
      const started = performance.now();
      const { rows } = await client.query<{ version: string; tracked: boolean }>({
        text: `select current_setting('server_version') as version, to_regclass('mikro_orm_migrations') is not null as tracked`,
        query_timeout: queryTimeoutMs,
      } as pg.QueryConfig);
      const latencyMs = performance.now() - started;
      const executed = rows[0]!.tracked
        ? (
            await client.query<{ name: string }>({
              text: 'select name from mikro_orm_migrations order by id',
              query_timeout: queryTimeoutMs,
            } as pg.QueryConfig)
          ).rows.map((row) => row.name)
        : [];
      return { latencyMs, serverVersion: rows[0]!.version, executed };
    } catch (error) {
      failure = error as Error;
      throw error;
    } finally {
      // A connection that failed or timed out is destroyed, not returned to the pool.
      client.release(failure);
    }
  }
}

declare module '../graphql/context.js' {
  interface Services {
    health: HealthService;
  }
}
