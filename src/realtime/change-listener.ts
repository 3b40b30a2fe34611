import pg from 'pg';
import type { Config } from '../config/config.js';
import { connectionSettings } from '../db/connection-settings.js';
import { CHANGES_CHANNEL } from '../modules/tasks/task.changes.js';
import type { Logger } from '../observability/logger.js';

export interface ListenerEvents {
  /** A change of `ownerId`'s tasks with this seq has committed. */
  change(ownerId: string, seq: number): void;
  /** Listening again after a break: anything may have committed meanwhile. */
  resumed(): void;
  /** The connection broke and could not be made again in time: subscribers must resume on their own. */
  lost(): void;
}

/**
 * How often the idle listening connection is asked `select 1`, and how long it may take: a connection that died
 * without a word (a frozen server, a network partition) is noticed within this, not TCP's hours.
 */
const HEARTBEAT_MS = 15_000;
const HEARTBEAT_TIMEOUT_MS = 5_000;

/** Waits between reconnection attempts: doubling from 100 ms up to 5 s. */
const backoffMs = (attempt: number) => Math.min(100 * 2 ** attempt, 5000);

/**
 * One `LISTEN` connection per instance over the direct URL (a transaction-mode pooler drops `LISTEN` without a
 * word), open only while someone wants it, so that an idle Neon compute can suspend. When it breaks it is made
 * again with backoff; after `lostAfterMs` without it, `lost` tells the subscribers, and it keeps trying for as
 * long as it is wanted.
 */
export class ChangeListener {
  #client: pg.Client | undefined;
  #connecting: Promise<void> | undefined;
  #wanted = false;
  #broken = false;
  #retry: NodeJS.Timeout | undefined;
  #lostTimer: NodeJS.Timeout | undefined;
  #attempt = 0;
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: Pick<Config, 'db'>,
    private readonly directUrl: string,
    private readonly logger: Logger,
    private readonly events: ListenerEvents,
    private readonly lostAfterMs = 10_000,
  ) {}

  get listening(): boolean {
    return this.#client !== undefined && !this.#broken;
  }

  /** Resolves once `LISTEN` is in place (connecting first if needed); rejects when that attempt fails. */
  async ready(): Promise<void> {
    this.#wanted = true;
    if (this.listening) return;
    this.#connecting ??= this.#connect().finally(() => (this.#connecting = undefined));
    return this.#connecting;
  }

  /** Nobody needs it any more: close the connection. */
  async stop(): Promise<void> {
    this.#wanted = false;
    clearTimeout(this.#retry);
    clearTimeout(this.#lostTimer);
    clearInterval(this.#heartbeat);
    this.#lostTimer = undefined;
    this.#attempt = 0;
    await this.#connecting?.catch(() => undefined);
    const client = this.#client;
    this.#client = undefined;
    this.#broken = false;
    await client?.end().catch(() => undefined);
  }

  async #connect(): Promise<void> {
    const settings = connectionSettings(this.directUrl);
    const client = new pg.Client({
      ...settings,
      connectionTimeoutMillis: this.config.db.connectTimeoutMs,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      application_name: 'todo-graphql-server listener',
    });
    client.on('error', (error) => this.#broke(client, error));
    client.on('end', () => this.#broke(client, new Error('connection ended')));
    client.on('notification', ({ channel, payload }) => {
      if (channel !== CHANGES_CHANNEL || !payload) return;
      const [ownerId, seq] = payload.split(':');
      if (ownerId && seq) this.events.change(ownerId, Number(seq));
    });
    try {
      await client.connect();
      await client.query(`listen ${CHANGES_CHANNEL}`);
    } catch (error) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      throw error;
    }
    if (!this.#wanted) {
      await client.end().catch(() => undefined);
      return;
    }
    const resumed = this.#broken;
    this.#client = client;
    this.#broken = false;
    this.#attempt = 0;
    clearTimeout(this.#lostTimer);
    this.#lostTimer = undefined;
    clearInterval(this.#heartbeat);
    this.#heartbeat = setInterval(() => {
      client.query({ text: 'select 1', query_timeout: HEARTBEAT_TIMEOUT_MS } as pg.QueryConfig).catch((error: Error) => this.#broke(client, error));
    }, HEARTBEAT_MS);
    this.#heartbeat.unref();
    if (resumed) {
      this.logger.info('listening for task changes again');
      this.events.resumed();
    }
  }

  #broke(client: pg.Client, error: Error): void {
    if (client !== this.#client || this.#broken) return;
    this.#broken = true;
    clearInterval(this.#heartbeat);
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    if (!this.#wanted) return;
    this.logger.warn({ err: error }, 'the listening connection broke: reconnecting');
    this.#lostTimer = setTimeout(() => {
      this.logger.error('could not listen again in time: ending subscriptions so that clients resume');
      this.events.lost();
    }, this.lostAfterMs);
    this.#lostTimer.unref();
    this.#reconnect();
  }

  #reconnect(): void {
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      if (!this.#wanted || this.listening) return;
      this.#connecting ??= this.#connect().finally(() => (this.#connecting = undefined));
      this.#connecting.catch((error: unknown) => {
        this.logger.warn({ err: error, attempt: this.#attempt }, 'listening connection not made yet');
        this.#attempt += 1;
        this.#reconnect();
      });
    }, backoffMs(this.#attempt));
    this.#retry.unref();
  }
}
