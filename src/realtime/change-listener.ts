import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Config } from '../config/config.js';
import { connectionSettings, isNeonPooler } from '../db/connection-settings.js';
import type { Listen, Listener, ListenerEvents } from '../db/notifications.js';
import type { Logger } from '../observability/logger.js';

export interface ListenerTimings {
  /** After the last subscriber leaves, the connection stays this long (a client resubscribing costs no new one). */
  lingerMs: number;
  /** Without the connection this long, `lost` tells the subscribers. */
  lostAfterMs: number;
}

const TIMINGS: ListenerTimings = { lingerMs: 5_000, lostAfterMs: 10_000 };

/**
 * How often the idle listening connection is asked `select 1`, and how long it may take: a connection that died
 * without a word (a frozen server, a network partition) is noticed within this, not TCP's hours.
 */
const HEARTBEAT_MS = 15_000;
const HEARTBEAT_TIMEOUT_MS = 5_000;

/** What a probe's payload starts with (see `listening`). */
const PROBE = 'probe:';
/** A listener that has not heard its own probe for this long says so in the log. */
const UNHEARD_WARN_MS = 5_000;

/** Waits between reconnection attempts: doubling from 100 ms up to 5 s. */
const backoffMs = (attempt: number) => Math.min(100 * 2 ** attempt, 5000);

/**
 * One `LISTEN` connection per channel and instance over the direct URL (a transaction-mode pooler drops `LISTEN` without a
 * word), open only while someone wants it, so that an idle Neon compute can suspend. When it breaks it is made
 * again with backoff; after `lostAfterMs` without it, `lost` tells the subscribers, and it keeps trying for as
 * long as it is wanted.
 *
 * Every connection attempt belongs to an epoch; `stop()` starts a new one, so an attempt that finishes after it
 * (or after a newer attempt) closes its own connection instead of installing it.
 */
export class ChangeListener implements Listener {
  #client: pg.Client | undefined;
  #connecting: Promise<void> | undefined;
  #epoch = 0;
  #wanted = false;
  #broken = false;
  #retry: NodeJS.Timeout | undefined;
  #lostTimer: NodeJS.Timeout | undefined;
  #linger: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #attempt = 0;
  #prober: NodeJS.Timeout | undefined;
  /** Probes sent on the current connection and not heard back yet: nonce, and when each was sent. */
  readonly #probes = new Map<string, number>();
  /** When the last probe that came back was sent: everything committed before it has been delivered. */
  #confirmedAt = 0;
  #warnedUnheard = false;
  #installedAt = 0;

  constructor(
    private readonly config: Pick<Config, 'db'>,
    private readonly directUrl: string,
    private readonly logger: Logger,
    private readonly channel: string,
    private readonly events: ListenerEvents,
    private readonly timings: ListenerTimings = TIMINGS,
    /** Prove delivery this often (see `listening`); 0: the connection being up is taken for it. */
    private readonly confirmEveryMs = 0,
  ) {}

  /**
   * Whether notifications arrive now. With `confirmEveryMs`, the listener notifies its own channel that often
   * and counts as listening only while it has heard itself within three times that (one late probe is not an
   * outage): a connection that stopped delivering without a word (a silent network, a transaction-mode pooler
   * on the "direct" URL) is found out within that, not after the heartbeat's seconds. Without it, a connection
   * that is up and not known to be broken.
   */
  get listening(): boolean {
    if (!this.#connected) return false;
    return this.confirmEveryMs === 0 || Date.now() - this.#confirmedAt < 3 * this.confirmEveryMs;
  }

  get #connected(): boolean {
    return this.#client !== undefined && !this.#broken;
  }

  /** Resolves once `LISTEN` is in place (connecting first if needed); rejects when that attempt fails. */
  async ready(): Promise<void> {
    this.#wanted = true;
    clearTimeout(this.#linger);
    if (this.#connected) return;
    this.#connecting ??= this.#connect(this.#epoch);
    return this.#connecting;
  }

  /** Nobody needs it now: it closes after the linger, unless wanted again by then. */
  release(): void {
    clearTimeout(this.#linger);
    this.#linger = setTimeout(() => void this.stop(), this.timings.lingerMs);
    this.#linger.unref();
  }

  /** Closes the connection now; an attempt in flight closes its own when it finishes. */
  async stop(): Promise<void> {
    this.#epoch += 1;
    this.#wanted = false;
    for (const timer of [this.#retry, this.#lostTimer, this.#linger]) clearTimeout(timer);
    clearInterval(this.#heartbeat);
    clearInterval(this.#prober);
    this.#attempt = 0;
    this.#connecting = undefined;
    const client = this.#client;
    this.#client = undefined;
    this.#broken = false;
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
    }
  }

  async #connect(epoch: number): Promise<void> {
    try {
      if (isNeonPooler(this.directUrl)) {
        throw new Error(
          'LISTEN would go through a connection pooler (a "-pooler" host), which drops it: set DATABASE_DIRECT_URL to the direct URL',
        );
      }
      const client = new pg.Client({
        ...connectionSettings(this.directUrl),
        connectionTimeoutMillis: this.config.db.connectTimeoutMs,
        keepAlive: true,
        keepAliveInitialDelayMillis: 10_000,
        application_name: `todo-graphql-server listener (${this.channel})`,
      });
      client.on('error', (error) => this.#broke(client, error));
      client.on('end', () => this.#broke(client, new Error('connection ended')));
      client.on('notification', ({ channel, payload }) => {
        if (channel !== this.channel || !payload) return;
        // Probes are not news: each instance's listener hears its own, and ignores the others'.
        if (payload.startsWith(PROBE)) return this.#heard(payload);
        this.events.notify(payload);
      });
      try {
        await client.connect();
        // A connection that stalls right after its handshake must not hold every new subscriber.
        await client.query({
          text: `listen ${client.escapeIdentifier(this.channel)}`,
          query_timeout: this.config.db.connectTimeoutMs,
        } as pg.QueryConfig);
      } catch (error) {
        client.removeAllListeners('end');
        await client.end().catch(() => undefined);
        throw error;
      }
      if (epoch !== this.#epoch || !this.#wanted) {
        // Stopped meanwhile: this connection is nobody's.
        client.removeAllListeners('end');
        await client.end().catch(() => undefined);
        return;
      }
      this.#install(client);
    } finally {
      if (epoch === this.#epoch) this.#connecting = undefined;
    }
  }

  #install(client: pg.Client): void {
    const resumed = this.#broken;
    this.#installedAt = Date.now();
    this.#client = client;
    this.#broken = false;
    this.#attempt = 0;
    clearTimeout(this.#lostTimer);
    clearInterval(this.#heartbeat);
    this.#heartbeat = setInterval(() => {
      client
        .query({ text: 'select 1', query_timeout: HEARTBEAT_TIMEOUT_MS } as pg.QueryConfig)
        .catch((error: Error) => this.#broke(client, error));
    }, HEARTBEAT_MS);
    this.#heartbeat.unref();
    this.#probes.clear();
    this.#warnedUnheard = false;
    clearInterval(this.#prober);
    if (this.confirmEveryMs > 0) {
      this.#probe(client);
      this.#prober = setInterval(() => this.#probe(client), this.confirmEveryMs);
      this.#prober.unref();
    }
    if (resumed) {
      this.logger.info({ channel: this.channel }, 'listening again');
      this.events.resumed();
    }
  }

  /** Notifies its own channel; hearing it back proves that everything committed before was delivered. */
  #probe(client: pg.Client): void {
    const now = Date.now();
    // Unheard for long: nothing it listens for arrives either. Said once per connection.
    if (!this.#warnedUnheard && now - Math.max(this.#confirmedAt, this.#installedAt) > UNHEARD_WARN_MS) {
      this.#warnedUnheard = true;
      this.logger.warn(
        { channel: this.channel },
        'the listening connection does not hear its own notifications: is DATABASE_DIRECT_URL a connection pooler?',
      );
    }
    for (const [nonce, sentAt] of this.#probes) if (now - sentAt > UNHEARD_WARN_MS) this.#probes.delete(nonce);
    const nonce = `${PROBE}${randomUUID()}`;
    this.#probes.set(nonce, now);
    client
      .query({ text: 'select pg_notify($1, $2)', values: [this.channel, nonce], query_timeout: HEARTBEAT_TIMEOUT_MS } as pg.QueryConfig)
      .catch((error: Error) => this.#broke(client, error));
  }

  #heard(nonce: string): void {
    const sentAt = this.#probes.get(nonce);
    if (sentAt === undefined) return;
    this.#probes.delete(nonce);
    this.#confirmedAt = Math.max(this.#confirmedAt, sentAt);
  }

  #broke(client: pg.Client, error: Error): void {
    if (client !== this.#client || this.#broken) return;
    this.#broken = true;
    clearInterval(this.#heartbeat);
    clearInterval(this.#prober);
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    if (!this.#wanted) return;
    this.logger.warn({ err: error, channel: this.channel }, 'the listening connection broke: reconnecting');
    clearTimeout(this.#lostTimer);
    this.#lostTimer = setTimeout(() => {
      this.logger.error({ channel: this.channel }, 'could not listen again in time');
      this.events.lost();
    }, this.timings.lostAfterMs);
    this.#lostTimer.unref();
    this.#reconnect();
  }

  #reconnect(): void {
    clearTimeout(this.#retry);
    const epoch = this.#epoch;
    this.#retry = setTimeout(() => {
      if (epoch !== this.#epoch || !this.#wanted || this.#connected) return;
      this.#connecting ??= this.#connect(epoch);
      this.#connecting.catch((error: unknown) => {
        if (epoch !== this.#epoch) return;
        this.logger.warn({ err: error, attempt: this.#attempt, channel: this.channel }, 'listening connection not made yet');
        this.#attempt += 1;
        this.#reconnect();
      });
    }, backoffMs(this.#attempt));
    this.#retry.unref();
  }
}

/** A channel's listener: one `LISTEN` connection over `directUrl`, made when its feature first wants it. */
export const listenOn =
  (config: Pick<Config, 'db'>, directUrl: string, logger: Logger): Listen =>
  (channel, events, { confirmEveryMs } = {}): Listener =>
    new ChangeListener(config, directUrl, logger, channel, events, TIMINGS, confirmEveryMs);
